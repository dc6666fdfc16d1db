"""Known peer functions: how each is laid out and spelled, so that certifying it needs no flag.

A kernel the harness meets by target (``module:function``) gets its record from :data:`KNOWN` when
there is one: a heads-first layout, keyword renames the alias rules cannot guess, and — for
functions whose signature is opaque (HF transformers wraps its torch fallbacks in hub-kernel
modules whose signature reads ``(*args, **kwargs)``) — the parameters of the function underneath.
Everything else (``query``/``key``/``value`` for ``q``/``k``/``v``, ``gk`` for ``g``,
``alpha``/``beta`` for ``a``/``b``, ``return_final_states`` / ``return_last_states`` for
``output_final_state``) :func:`lrnnspec.harness.conventions.resolve` reads from the signature.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Known:
    family: str
    layout: str | None = None                    # "heads-first" for [B,H,T,·] references
    convention: str | None = None                # the calling convention, where not the family's default
    rename: dict[str, str] = field(default_factory=dict)
    always_state: bool = False                   # returns (output, final state) on every call, with no flag
    env: dict[str, str] = field(default_factory=dict)   # variables its process needs (lrnnspec.peers.shims)
    parameters: tuple[str, ...] | None = None    # the real signature, where the function's own is opaque
    defaults: dict = field(default_factory=dict)   # of those parameters
    notes: str = ""


_HF_CHUNK = ("query", "key", "value", "g", "beta", "chunk_size", "initial_state", "output_final_state",
             "use_qk_l2norm_in_kernel")
_HF_RECURRENT = ("query", "key", "value", "g", "beta", "initial_state", "output_final_state", "use_qk_l2norm_in_kernel")
_KIMI_CHUNK = ("query", "key", "value", "g", "beta", "chunk_size", "initial_state", "output_final_state",
               "use_qk_l2norm_in_kernel")
_KIMI_RECURRENT = ("query", "key", "value", "g", "beta", "initial_state", "output_final_state",
                   "use_qk_l2norm_in_kernel")
_HF_NOTE = ("HF transformers' torch fallback, wrapped in a hub-kernel module whose signature reads (*args, **kwargs): "
            "the parameters are those of the function underneath; its **kwargs swallow anything else")

KNOWN: dict[str, Known] = {
    # fla-core 0.6.0's pure-PyTorch references (fla/ops/*/naive.py)
    "fla.ops.delta_rule.naive:delta_rule_recurrence": Known("delta_rule", "heads-first"),
    "fla.ops.delta_rule.naive:delta_rule_chunkwise": Known("delta_rule", "heads-first", always_state=True),
    "fla.ops.delta_rule.naive:delta_rule_parallel": Known("delta_rule", "heads-first"),
    "fla.ops.retention.naive:naive_retention": Known("retention", "heads-first"),
    "fla.ops.generalized_delta_rule.dplr.naive:dplr_recurrence": Known("dplr", "heads-first"),
    "fla.ops.generalized_delta_rule.dplr.naive:dplr_chunkwise": Known("dplr", "heads-first"),
    "fla.ops.rwkv6.recurrent_naive:naive_recurrent_rwkv6": Known("rwkv6", "heads-first"),
    "fla.ops.based.naive:naive_parallel_based": Known("based", "heads-first"),
    "fla.ops.rebased.naive:naive_parallel_rebased": Known("rebased", "heads-first"),
    # returns (o, h_kk, h_kv) on every call, no flag; its state keywords (h_kk_init, h_kv_init) are read
    # from the signature
    "fla.ops.mesa_net.naive:naive_mesa_net_exact": Known("mesa_net", always_state=True),
    # mlstm_kernels 2.0.6: [B, NH, S, D] inputs, (c, n, m) states, return_last_states
    **{f"mlstm_kernels.torch.{module}:{fn}": Known("mlstm", convention="mlstm_kernels")
       for module, fn in (("chunkwise", "mlstm_chunkwise__native_autograd"),
                          ("chunkwise", "mlstm_chunkwise__native_custbw"),
                          ("parallel", "mlstm_parallel__native_autograd"),
                          ("parallel", "mlstm_parallel__native_stablef_autograd"),
                          ("recurrent", "mlstm_recurrent_sequence__native_fw"))},
    # mamba_ssm 2.3.2: channels-first selective scan; SSD with chunk_size required
    # (selective_scan_interface imports the CUDA extension at the top; the reference never calls it)
    "mamba_ssm.ops.selective_scan_interface:selective_scan_ref": Known(
        "mamba", convention="mamba_ssm", env={"LRNNSPEC_ABSENT_EXTENSIONS": "selective_scan_cuda"}),
    "mamba_ssm.ops.triton.ssd_combined:ssd_chunk_scan_combined_ref": Known(
        "mamba2", convention="mamba_ssm", env={"LRNNSPEC_ABSENT_EXTENSIONS": "selective_scan_cuda"}),
    "mamba_ssm.ops.triton.ssd_combined:mamba_chunk_scan_combined": Known(
        "mamba2", convention="mamba_ssm", env={"LRNNSPEC_ABSENT_EXTENSIONS": "selective_scan_cuda"}),
    # HF transformers (Qwen3-Next and OLMo-hybrid carry copies of the same functions)
    **{f"transformers.models.{model}:{fn}": Known("gated_delta_rule", parameters=params,
                                                 defaults={"chunk_size": 64} if "chunk" in fn else {}, notes=_HF_NOTE)
       for model in ("qwen3_next.modeling_qwen3_next", "olmo_hybrid.modeling_olmo_hybrid")
       for fn, params in (("torch_chunk_gated_delta_rule", _HF_CHUNK),
                          ("torch_recurrent_gated_delta_rule", _HF_RECURRENT))},
    # HF transformers' Kimi-Linear (KDA): no GVA, no scale (fixed K^-1/2), no cu_seqlens on the torch path
    "transformers.models.kimi_linear.modeling_kimi_linear:chunk_kimi_delta_attention": Known(
        "kda", parameters=_KIMI_CHUNK, defaults={"chunk_size": 64}, notes=_HF_NOTE),
    "transformers.models.kimi_linear.modeling_kimi_linear:recurrent_kimi_delta_attention": Known(
        "kda", parameters=_KIMI_RECURRENT, notes=_HF_NOTE + "; initial_state and output_final_state have no default"),
}


def known(target: str) -> Known | None:
    """The record of ``target`` (``module:function``), or None."""
    return KNOWN.get(target)
