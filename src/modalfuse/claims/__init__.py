"""Published claims, checked: a paper's numbers, orderings, differences, equivalences and
non-inferiority claims (a claims file, ``schema``) evaluated against a comparison's runs
(``evaluate``) with verdicts from the report's bootstrap (``estimate``, ``verdicts``), written as
``claims.csv`` and a markdown section (``output``). Format and method: docs/claims.md."""

from __future__ import annotations

from .evaluate import ClaimRow, evaluate
from .output import default_out, report_section, run_claims, write_claims
from .schema import ClaimsFile, claims_names, claims_path, load_claims

__all__ = ["ClaimRow", "ClaimsFile", "claims_names", "claims_path", "default_out", "evaluate", "load_claims", "report_section",
           "run_claims", "write_claims"]
