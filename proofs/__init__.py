"""lrnnspec.proofs — the expressivity theorems as executable checks.

Not yet written: see the project's proofs issue.
"""
