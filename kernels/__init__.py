"""lrnnspec.kernels — Triton kernels (forward and backward) for the chunkwise delta and gated families.

* :mod:`.gated_delta_rule` — Gated DeltaNet (UT transform, β ∈ [0, 2]); :mod:`.delta_rule` (g ≡ 0)
  and :mod:`.delta_product` (n_h micro-steps) run the same kernels;
* :mod:`.gla`, :mod:`.simple_gla` — per-key and per-head log gates.

Public functions have flash-linear-attention's signatures and go through the same argument checks,
GVA, varlen packing and padding as :mod:`lrnnspec.impls` (:func:`lrnnspec.impls.driver.call`); the
cores are ``torch.library`` custom ops (``torch.compile``, ``opcheck``).

On a machine without a CUDA device, importing this package sets ``TRITON_INTERPRET=1`` (unless the
variable is set already) before any kernel is defined, so the kernels run — slowly — in Triton's
interpreter on CPU tensors: that is how ``lrnnspec conformance`` certifies them without a GPU.
"""

import os

import torch

if "TRITON_INTERPRET" not in os.environ and not torch.cuda.is_available():
    os.environ["TRITON_INTERPRET"] = "1"
