"""Slicing a family's inputs along time, honouring interleaved ``T*n_h`` axes and static inputs."""

from __future__ import annotations

import numpy as np

from .family import Family, get_family


def slice_time(family: "str | Family", inputs: dict, start: int, stop: int) -> dict:
    """Inputs restricted to tokens [start, stop): per-step inputs are sliced on axis 1 (by
    ``t·n_h`` for interleaved ones), static inputs are kept as they are."""
    fam = get_family(family)
    T = None
    for inp in fam.inputs:
        if inp.per_step and inp.dims[1] == "T" and inputs.get(inp.name) is not None:
            T = np.shape(inputs[inp.name])[1]
            break
    out = {}
    for name, value in inputs.items():
        inp = fam.input(name)
        if value is None or not inp.per_step:
            out[name] = value
        elif inp.dims[1] == "T*n_h":
            n_h = np.shape(value)[1] // T if T else 1
            out[name] = value[:, start * n_h:stop * n_h]
        else:
            out[name] = value[:, start:stop]
    return out
