"""Impossibility witnesses for one layer (or a stack) on the word ``1^k``, per format, in both models.

``one_layer_witness`` = spectral certificate (eigenvalues of A(1)) + the cast-model orbit
(:func:`~lrnnspec.proofs.castmodel.cast_orbit`: eventual period and the index k̄ it starts at) +
the step-wise orbit (:func:`~lrnnspec.proofs.castmodel.stepwise_orbit`, the emulated family with every
operation rounded). The two models are reported separately; only the cast model is the theorems'.
"""

from __future__ import annotations

import numpy as np

from .castmodel import cast_orbit, exact_affine, stepwise_orbit
from .construction import Layer
from .emulate import FastLayer
from .linalg import spectral_class

WITNESS_FORMATS = ("fp16", "bf16", "fp32")


def one_layer_witness(layer: Layer, formats=WITNESS_FORMATS, step_cap: int = 20000, tok: int = 0) -> dict:
    A, B, H0 = exact_affine(layer, tok)
    spec = spectral_class(layer.transition(tok))
    out = {"kind": layer.name, "family": layer.family, "eigenvalues": [complex(e) for e in spec["eigenvalues"]],
           "real": spec["real"], "real_nonnegative": spec["real_nonnegative"], "cast": {}, "stepwise": {}}
    for fmt in formats:
        out["cast"][fmt] = cast_orbit(A, B, [H0], fmt).to_json()
        fl = FastLayer(layer, fmt)
        toks = np.array([tok])
        out["stepwise"][fmt] = stepwise_orbit(lambda s: fl.step(s, toks), fl.initial(1), fmt, step_cap).to_json()
    return out


def stack_stepwise(layers: list[Layer], fmt: str, cap: int) -> dict:
    """Step-wise orbit of a stack on ``1^k``: layer 1 reads token 0, layer ℓ+1 reads the label (sign of
    the first coordinate) that layer ℓ's decoder gives after the same step. The joint state is a
    deterministic map of a finite set, so the orbit is eventually periodic; returns tail and period."""
    fls = [FastLayer(layer, fmt) for layer in layers]
    sizes = [int(np.prod(fl.h0.shape)) for fl in fls]
    shapes = [fl.h0.shape for fl in fls]

    def step(joint):
        out, tok, pos = [], np.array([0]), 0
        for fl, size, shape in zip(fls, sizes, shapes):
            s = joint[:, pos:pos + size].reshape((1,) + shape)
            pos += size
            s = fl.step(s, tok)
            tok = fl.decode(s)
            out.append(s.reshape(1, -1))
        return np.concatenate(out, axis=1)

    init = np.concatenate([fl.initial(1).reshape(1, -1) for fl in fls], axis=1)
    return stepwise_orbit(step, init, fmt, cap).to_json()
