"""lrnnspec.kernels — Triton kernels, verified on CPU under TRITON_INTERPRET=1.

Not yet written: see the project's kernels issue.
"""
