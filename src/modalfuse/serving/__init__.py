"""Serving a trained run: export it (torch.export ``.pt2``, ONNX) and predict with it on new files."""
