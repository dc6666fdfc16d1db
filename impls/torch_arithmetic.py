"""The spec's arithmetic protocol on torch tensors: the families' one definition, run by PyTorch.

Every operation is the plain torch operation in the compute dtype (no rounding points), so a
family's ``step``/``readout`` from :mod:`lrnnspec.spec.families` become a differentiable token
loop on any device: the recurrent form of every family, and the reference VJP.
"""

from __future__ import annotations

import torch

from lrnnspec.spec.arithmetic import Arithmetic

from .chunks import overflow_safe_exp


class TorchArithmetic(Arithmetic):
    name = "torch"

    def __init__(self, dtype: torch.dtype = torch.float32, device: "torch.device | str" = "cpu"):
        self.dtype, self.device = dtype, torch.device(device)

    def asarray(self, x):
        return torch.as_tensor(x, dtype=self.dtype, device=self.device)

    def const(self, c):
        return float(c)

    def to_float(self, a):
        return a.detach().double().cpu().numpy()

    def zeros(self, shape):
        return torch.zeros(shape, dtype=self.dtype, device=self.device)

    def empty(self, shape):
        return torch.empty(shape, dtype=self.dtype, device=self.device)

    def exp(self, a):
        return overflow_safe_exp(a)

    def log1p(self, a):
        return torch.log1p(a)

    def log(self, a):
        return torch.log(a)

    def sqrt(self, a):
        return torch.sqrt(a)

    def abs(self, a):
        return torch.abs(a)

    def maximum(self, a, b):
        return torch.maximum(a, b)

    def sum(self, a, axis):
        return torch.sum(a, dim=axis)

    def sigmoid(self, x):
        # the same function as the spec's 1 / (1 + exp(−x)), whose autograd gives inf/inf = NaN in
        # float32 once exp(−x) overflows (x < −88)
        return torch.sigmoid(x)

    def softplus(self, x):
        return torch.clamp_min(x, 0.0) + torch.log1p(torch.exp(-torch.abs(x)))
