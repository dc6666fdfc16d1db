"""mlstm — the stabilized matrix LSTM with NX-AI/mlstm_kernels' signatures.

    m_t = max(logσ(f_t) + m_{t−1}, i_t)
    C_t = e^{logσ(f_t) + m_{t−1} − m_t} C_{t−1} + e^{i_t − m_t} k_t v_tᵀ,   n_t likewise with k_t
    h_t = C_tᵀ q̃_t / (max(|n_tᵀ q̃_t|, e^{−m_t}) + eps),   q̃_t = scale · q_t, scale = DHQK^−1/2

Every form takes mlstm_kernels' arguments, in its order and with its defaults::

    (q, k, v, i, f, c_initial=None, n_initial=None, m_initial=None, return_last_states=False, eps=1e-6,
     *, cu_seqlens=None, scale=None[, chunk_size=64])

head-first: q, k [B,NH,S,DHQK]; v [B,NHV,S,DHHV]; i, f [B,NHV,S] (NHV = NH as in mlstm_kernels, or
a multiple of it: grouped value heads); states c [N,NHV,DHQK,DHHV], n [N,NHV,DHQK], m [N,NHV,1]
with N = B, or the number of sequences when ``cu_seqlens`` (int64 [N+1], B = 1, packed along S) is
given. The three initial states go together (all or none; none → zeros). Returns h [B,NHV,S,DHHV]
in v's dtype, or (h, (c, n, m)) when ``return_last_states`` (states in float32, float64 for
float64 inputs). Extras mlstm_kernels lacks: ``cu_seqlens``, ``scale`` (None → DHQK^−1/2).

* ``recurrent_mlstm`` — the spec's own step, token by token (mlstm_kernels'
  ``mlstm_recurrent_sequence__native_fw``);
* ``chunk_mlstm``     — chunkwise, exact in the stabilizer (see :mod:`.mlstm_core`; note that
  mlstm_kernels' chunkwise kernels use a per-chunk stabilizer, so their returned m can differ
  from the recurrent one — here every form returns the spec's m_t);
* ``parallel_mlstm``  — one chunk spanning the sequence (quadratic in S).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F_

from lrnnspec.spec.errors import ShapeError, SpecError
from lrnnspec.spec.prepare import _check_cu_seqlens

from .driver import Chunked, call
from .mlstm_core import I_PAD, mlstm_core
from .registry import register_forms

CONVENTION = "mlstm_kernels"

CHUNKED = Chunked(
    prepare=lambda x, p: {"q": x["q"], "k": x["k"], "v": x["v"], "i": x["i"], "lam": F_.logsigmoid(x["f"])},
    core=mlstm_core,
    pads={"i": I_PAD, "lam": 0.0},
)


# --- the peer's layouts ---------------------------------------------------------------------------
def check_layout(layouts: dict, args: dict, dims: dict | None = None) -> dict[str, int]:
    """Bind the symbols of the peer's layouts; raise ShapeError naming the argument on a mismatch.

    ``layouts``: name → tuple of symbols (e.g. ("B", "NH", "S", "DHQK")); ``args``: name → value
    (None values are skipped); ``dims``: symbols already bound (and where). Returns the symbols."""
    dims = dict(dims or {})
    where = {s: "(given)" for s in dims}
    for name, layout in layouts.items():
        value = args.get(name)
        if value is None:
            continue
        if not isinstance(value, torch.Tensor):
            raise SpecError(name, f"must be a torch.Tensor [{','.join(layout)}], got {type(value).__name__}")
        if value.dim() != len(layout):
            raise ShapeError(name, f"expected a {len(layout)}-D tensor [{','.join(layout)}], got shape "
                                   f"{tuple(value.shape)}")
        for sym, size in zip(layout, value.shape):
            if sym.isdigit():
                if size != int(sym):
                    raise ShapeError(name, f"expected [{','.join(layout)}], got shape {tuple(value.shape)}")
                continue
            if sym in dims and dims[sym] != size:
                raise ShapeError(name, f"dimension {sym} is {size} here but {dims[sym]} in {where[sym]} "
                                       f"(shape {tuple(value.shape)} vs [{','.join(layout)}])")
            if sym not in dims:
                dims[sym], where[sym] = size, name
    return dims


def num_sequences(cu_seqlens, batch: int, length: int) -> int:
    """N: the batch size, or the number of packed sequences (cu_seqlens checked by the spec's rules)."""
    if cu_seqlens is None:
        return batch
    return len(_check_cu_seqlens(cu_seqlens, {"B": batch, "T": length}))


def _bind(q, k, v, i, f, c_initial, n_initial, m_initial, cu_seqlens):
    inputs = dict(q=q, k=k, v=v, i=i, f=f)
    for name, value in inputs.items():
        if value is None:
            raise SpecError(name, "is required")
    dims = check_layout({"q": ("B", "NH", "S", "DHQK"), "k": ("B", "NH", "S", "DHQK"),
                         "v": ("B", "NHV", "S", "DHHV"), "i": ("B", "NHV", "S"), "f": ("B", "NHV", "S")}, inputs)
    given = {"c_initial": c_initial, "n_initial": n_initial, "m_initial": m_initial}
    missing = [name for name, value in given.items() if value is None]
    if 0 < len(missing) < 3:
        raise SpecError(missing[0], "the initial states c_initial, n_initial, m_initial go together: "
                                    f"give all three or none (missing: {', '.join(missing)})")
    n = num_sequences(cu_seqlens, dims["B"], dims["S"])
    initial = None
    if not missing:
        check_layout({"c_initial": ("N", "NHV", "DHQK", "DHHV"), "n_initial": ("N", "NHV", "DHQK"),
                      "m_initial": ("N", "NHV", "1")}, given, {**dims, "N": n})
        initial = {"C": c_initial, "n": n_initial, "m": m_initial[..., 0]}
    spec_inputs = dict(q=q.transpose(1, 2), k=k.transpose(1, 2), v=v.transpose(1, 2), i=i.transpose(1, 2),
                       f=f.transpose(1, 2))
    return spec_inputs, initial


def _run(form, q, k, v, i, f, c_initial, n_initial, m_initial, return_last_states, eps, cu_seqlens, scale,
         chunk_size=None):
    if not isinstance(return_last_states, bool):
        raise SpecError("return_last_states", f"must be True or False, got {return_last_states!r}")
    inputs, initial = _bind(q, k, v, i, f, c_initial, n_initial, m_initial, cu_seqlens)
    h, last = call(form, "mlstm", CHUNKED, inputs, initial_state=initial, output_final_state=True,
                   cu_seqlens=cu_seqlens, chunk_size=chunk_size, scale=scale, eps=eps)
    h = h.transpose(1, 2)
    if not return_last_states:
        return h
    c, n, m = last
    return h, (c, n, m[..., None])


def recurrent_mlstm(q, k, v, i, f, c_initial=None, n_initial=None, m_initial=None, return_last_states=False,
                    eps=1e-6, *, cu_seqlens=None, scale=None):
    return _run("recurrent", q, k, v, i, f, c_initial, n_initial, m_initial, return_last_states, eps,
                cu_seqlens, scale)


def chunk_mlstm(q, k, v, i, f, c_initial=None, n_initial=None, m_initial=None, return_last_states=False,
                eps=1e-6, *, cu_seqlens=None, scale=None, chunk_size=64):
    return _run("chunk", q, k, v, i, f, c_initial, n_initial, m_initial, return_last_states, eps, cu_seqlens,
                scale, chunk_size)


def parallel_mlstm(q, k, v, i, f, c_initial=None, n_initial=None, m_initial=None, return_last_states=False,
                   eps=1e-6, *, cu_seqlens=None, scale=None):
    return _run("parallel", q, k, v, i, f, c_initial, n_initial, m_initial, return_last_states, eps,
                cu_seqlens, scale)


FORMS = register_forms("mlstm", {"recurrent": recurrent_mlstm, "chunk": chunk_mlstm, "parallel": parallel_mlstm}, convention=CONVENTION)
