"""The field's kernels as conformance backends: for each peer package, the functions users call and the
family each computes — a declarative table, nothing else. How a function is spelled and laid out is
read from its signature (:func:`lrnnspec.harness.conventions.resolve`) or, where the signature
cannot say it, from :mod:`.known` (layouts, conventions, opaque signatures); what it supports is
negotiated when it is certified. No function here is imported by the harness: each runs in its own
worker process, by target.

``lrnnspec conformance --backend fla-ref,fla,transformers,mlstm_kernels,mamba_ssm`` certifies them
into ``reports/conformance-peers.md``. Peers are an optional extra (``pip install '.[peers]'``);
mamba_ssm needs a CPU build recipe (``lrnnspec peers install mamba_ssm``).

Triton functions (``triton=True``) run on a machine without a GPU in Triton's interpreter
(``TRITON_INTERPRET=1``) with the first-config autotuning shim (:mod:`.shims`); on a GPU they run
natively, under the TF32 contract Triton's default fp32 dot rounds to.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .shims import ABSENT, AUTOTUNE

INTERPRETER = {"TRITON_INTERPRET": "1", AUTOTUNE: "first"}
# the interpreter runs a fused recurrent kernel at about 0.1 s per time step: its rows draw fewer,
# shorter cases (past one chunk of 64), in fp32 only (numpy has no bf16: the interpreter's bf16 is
# not the GPU's)
INTERPRETED_BUDGET = {"max_len": 72, "examples": 3, "dtypes": ("fp32",)}


@dataclass(frozen=True)
class PeerFunction:
    target: str                    # module:function, as users import it
    family: str
    form: str                      # recurrent, chunk or parallel
    triton: bool = False           # a Triton kernel (the interpreter and the shim on a CPU)


@dataclass(frozen=True)
class PeerBackend:
    name: str
    package: str                   # the module whose presence makes the backend available
    distribution: str              # its pip distribution (the version the report names)
    install: str                   # how a user installs it
    description: str
    functions: tuple[PeerFunction, ...]
    env: dict[str, str] = field(default_factory=dict)      # variables every function's process needs

    def env_for(self, fn: PeerFunction, device: str) -> dict[str, str]:
        """The variables ``fn``'s worker needs on ``device`` (``cpu``, ``cuda``, ...)."""
        interpreted = fn.triton and device.split(":")[0] == "cpu"
        return {**self.env, **(INTERPRETER if interpreted else {})}

    def budget_for(self, fn: PeerFunction, device: str) -> dict:
        """Limits on what ``fn`` is run on here: :data:`INTERPRETED_BUDGET` in the interpreter, else none."""
        return dict(INTERPRETED_BUDGET) if fn.triton and device.split(":")[0] == "cpu" else {}

    def contracts_for(self, fn: PeerFunction, device: str) -> dict[str, str]:
        """Triton's default fp32 dot rounds its operands to TF32 on NVIDIA GPUs; the interpreter
        computes it in fp32 (numpy)."""
        return {"fp32": "tf32"} if fn.triton and device.split(":")[0] == "cuda" else {}


def _fns(module: str, family: str, forms: dict[str, str], **kw) -> tuple[PeerFunction, ...]:
    return tuple(PeerFunction(f"{module}:{fn}", family, form, **kw) for fn, form in forms.items())


_FLA_REFERENCES = (
    *_fns("fla.ops.linear_attn.naive", "linear_attention",
          {"naive_recurrent_linear_attn": "recurrent", "naive_chunk_linear_attn": "chunk"}),
    *_fns("fla.ops.retention.naive", "retention", {"naive_retention": "parallel"}),
    *_fns("fla.ops.simple_gla.naive", "simple_gla", {"naive_recurrent_simple_gla": "recurrent",
                                                      "naive_chunk_simple_gla": "chunk",
                                                      "naive_parallel_simple_gla": "parallel"}),
    *_fns("fla.ops.gla.naive", "gla", {"naive_recurrent_gla": "recurrent"}),
    *_fns("fla.ops.delta_rule.naive", "delta_rule", {"delta_rule_recurrence": "recurrent",
                                                      "delta_rule_chunkwise": "chunk",
                                                      "delta_rule_parallel": "parallel"}),
    *_fns("fla.ops.gated_delta_rule.naive", "gated_delta_rule",
          {"naive_recurrent_gated_delta_rule": "recurrent", "naive_chunk_gated_delta_rule": "chunk"}),
    *_fns("fla.ops.gated_delta_product.naive", "delta_product", {"naive_recurrent_gated_delta_product": "recurrent"}),
    *_fns("fla.ops.generalized_delta_rule.dplr.naive", "dplr",
          {"dplr_recurrence": "recurrent", "dplr_chunkwise": "chunk"}),
    *_fns("fla.ops.kda.naive", "kda", {"naive_recurrent_kda": "recurrent", "naive_chunk_kda": "chunk"}),
    *_fns("fla.ops.comba.naive", "comba", {"naive_recurrent_comba": "recurrent", "naive_chunk_comba": "chunk"}),
    *_fns("fla.ops.rwkv6.recurrent_naive", "rwkv6", {"naive_recurrent_rwkv6": "recurrent"}),
    *_fns("fla.ops.hgrn.naive", "hgrn", {"naive_recurrent_hgrn": "recurrent"}),
    *_fns("fla.ops.based.naive", "based", {"naive_parallel_based": "parallel"}),
    *_fns("fla.ops.rebased.naive", "rebased", {"naive_parallel_rebased": "parallel"}),
    *_fns("fla.ops.gsa.naive", "gsa", {"naive_recurrent_gsa": "recurrent"}),
    *_fns("fla.ops.mesa_net.naive", "mesa_net", {"naive_mesa_net_exact": "recurrent"}),
    *_fns("fla.ops.log_linear_attn.naive", "log_linear_attn", {"naive_log_linear_attn": "parallel"}),
)

_FLA_TRITON = tuple(
    PeerFunction(f"fla.ops.{package}:{prefix}_{package}", family, form, triton=True)
    for package, family in (("linear_attn", "linear_attention"), ("retention", "retention"),
                            ("simple_gla", "simple_gla"), ("gla", "gla"), ("delta_rule", "delta_rule"),
                            ("gated_delta_rule", "gated_delta_rule"), ("kda", "kda"))
    for prefix, form in (("fused_recurrent", "recurrent"), ("chunk", "chunk")))

_HF = tuple(
    PeerFunction(f"transformers.models.{model}:{prefix}_{name}", family, form)
    for model, name, family in (("qwen3_next.modeling_qwen3_next", "gated_delta_rule", "gated_delta_rule"),
                                ("olmo_hybrid.modeling_olmo_hybrid", "gated_delta_rule", "gated_delta_rule"),
                                ("kimi_linear.modeling_kimi_linear", "kimi_delta_attention", "kda"))
    for prefix, form in ((("torch_chunk", "chunk"), ("torch_recurrent", "recurrent")) if family != "kda"
                         else (("chunk", "chunk"), ("recurrent", "recurrent"))))

_MLSTM = (
    *_fns("mlstm_kernels.torch.chunkwise", "mlstm", {"mlstm_chunkwise__native_autograd": "chunk",
                                                    "mlstm_chunkwise__native_custbw": "chunk"}),
    *_fns("mlstm_kernels.torch.parallel", "mlstm", {"mlstm_parallel__native_autograd": "parallel",
                                                   "mlstm_parallel__native_stablef_autograd": "parallel"}),
    *_fns("mlstm_kernels.torch.recurrent", "mlstm", {"mlstm_recurrent_sequence__native_fw": "recurrent"}),
)

_MAMBA = (
    PeerFunction("mamba_ssm.ops.selective_scan_interface:selective_scan_ref", "mamba", "recurrent"),
    PeerFunction("mamba_ssm.ops.triton.ssd_combined:ssd_chunk_scan_combined_ref", "mamba2", "chunk"),
    PeerFunction("mamba_ssm.ops.triton.ssd_combined:mamba_chunk_scan_combined", "mamba2", "chunk", triton=True),
)

PEER_BACKENDS: dict[str, PeerBackend] = {b.name: b for b in (
    PeerBackend("fla-ref", "fla", "fla-core", "pip install 'lrnnspec[peers]' (fla-core 0.6.0)",
                "fla-core's pure-PyTorch naive references (fla/ops/*/naive.py)", _FLA_REFERENCES),
    PeerBackend("fla", "fla", "fla-core", "pip install 'lrnnspec[peers]' (fla-core 0.6.0, triton)",
                "fla-core's Triton ops: fused_recurrent_* and chunk_* (chunk size 64, fixed)", _FLA_TRITON),
    PeerBackend("transformers", "transformers", "transformers", "pip install 'lrnnspec[peers]' (transformers)",
                "HF transformers' torch fallbacks (Qwen3-Next, OLMo-hybrid, Kimi-Linear)", _HF),
    PeerBackend("mlstm_kernels", "mlstm_kernels", "mlstm-kernels", "pip install 'lrnnspec[peers]' (mlstm-kernels 2.0.6)",
                "mlstm_kernels' native torch forms (chunkwise, parallel, recurrent)", _MLSTM),
    PeerBackend("mamba_ssm", "mamba_ssm", "mamba-ssm", "lrnnspec peers install mamba_ssm (a CPU build of mamba-ssm 2.3.2)",
                "mamba_ssm's references (selective_scan_ref, ssd_chunk_scan_combined_ref) and its Triton "
                "mamba_chunk_scan_combined", _MAMBA, env={ABSENT: "selective_scan_cuda"}),
)}


def version_of(backend: str) -> str | None:
    """The installed version of ``backend``'s distribution (read from its metadata; nothing imported)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(PEER_BACKENDS[backend].distribution)
    except PackageNotFoundError:
        return None
