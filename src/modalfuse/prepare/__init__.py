"""Offline conversions: raw data in, files that training reads fast out."""
