"""lrnnspec.impls — fast PyTorch forms (recurrent, chunkwise, parallel) of every family.

Not yet written: see the project's impls issue. Certified against :mod:`lrnnspec.spec`.
"""
