"""The field's kernels: where they are, how they are called, what they compute (data, not glue).

:mod:`.fla` — flash-linear-attention's pure-PyTorch chunkwise references, called on spec-layout
inputs (what ``lrnnspec bench`` times our chunk forms against).
"""
