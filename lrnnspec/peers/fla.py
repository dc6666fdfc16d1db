"""flash-linear-attention (fla-core 0.6.0): its pure-PyTorch chunkwise references (``fla/ops/*/naive.py``)
called on the spec's inputs — time-first, spec names — with chunk size :data:`CHUNK`. Each adapter
knows its reference's argument order and layout (heads-first for ``delta_rule`` and ``dplr``); the
table maps the spec family to (the reference's name, its adapter). fla-core is imported only when an
adapter is called.
"""

from __future__ import annotations

CHUNK = 64


def _heads_first(*ts):
    return [t.transpose(1, 2) for t in ts]


def _fla_simple_gla(x):
    from fla.ops.simple_gla.naive import naive_chunk_simple_gla
    return naive_chunk_simple_gla(x["q"], x["k"], x["v"], x["g"], chunk_size=CHUNK)


def _fla_linear_attention(x):
    from fla.ops.linear_attn.naive import naive_chunk_linear_attn
    return naive_chunk_linear_attn(x["q"], x["k"], x["v"])


def _fla_delta_rule(x):
    from fla.ops.delta_rule.naive import delta_rule_chunkwise
    q, k, v = _heads_first(x["q"], x["k"], x["v"])
    return delta_rule_chunkwise(q, k, v, x["beta"].transpose(1, 2), chunk_size=CHUNK)


def _fla_gated_delta_rule(x):
    from fla.ops.gated_delta_rule.naive import naive_chunk_gated_delta_rule
    return naive_chunk_gated_delta_rule(x["q"], x["k"], x["v"], x["g"], x["beta"], chunk_size=CHUNK)


def _fla_dplr(x):
    from fla.ops.generalized_delta_rule.dplr.naive import dplr_chunkwise
    q, k, v, a, b, gk = _heads_first(*(x[n] for n in ("q", "k", "v", "a", "b", "gk")))
    return dplr_chunkwise(q, k, v, a, b, gk, chunk_size=CHUNK)


# family → (fla-core function, adapter)
CHUNK_REFERENCES = {
    "linear_attention": ("naive_chunk_linear_attn", _fla_linear_attention),
    "simple_gla": ("naive_chunk_simple_gla", _fla_simple_gla),
    "delta_rule": ("delta_rule_chunkwise", _fla_delta_rule),
    "gated_delta_rule": ("naive_chunk_gated_delta_rule", _fla_gated_delta_rule),
    "dplr": ("dplr_chunkwise", _fla_dplr),
}


