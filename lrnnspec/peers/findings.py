"""What the certifier found in the field's kernels, explained: one record per finding, matched to the
failing rows of ``reports/conformance-peers.md`` by (function, property, dtype). The counterexample,
expected and observed values come from the certificate; the record adds what the harness cannot
know — where the cause lives in the peer's source, and whether it is a bug, a documented
limitation, or a precision effect within the peer's own contract. Each record names the test that
reproduces it with a small float64 computation outside the harness (``tests/peers/test_findings.py``),
so a finding cannot be an artefact of the harness.
"""

from __future__ import annotations

from dataclasses import dataclass

KINDS = ("bug", "documented limitation", "precision")


@dataclass(frozen=True)
class Finding:
    id: str
    title: str
    kind: str                          # one of KINDS
    targets: tuple[str, ...]           # module:function of every function it explains
    properties: tuple[str, ...]        # the failing properties it explains
    cause: str                         # file and function in the peer's source, and the mechanism
    check: str                         # the float64 test outside the harness
    dtypes: tuple[str, ...] = ("fp32", "bf16")

    def explains(self, target: str, prop: str, dtype: str) -> bool:
        return target in self.targets and prop in self.properties and dtype in self.dtypes


_MLSTM = "mlstm_kernels.torch"

FINDINGS: tuple[Finding, ...] = (
    Finding(
        "mlstm_nan_input_gate_gradient",
        "NaN input- and forget-gate gradients at very negative (legal) gates while the forward is finite",
        "bug",
        (f"{_MLSTM}.parallel:mlstm_parallel__native_autograd", f"{_MLSTM}.parallel:mlstm_parallel__native_stablef_autograd",
         f"{_MLSTM}.recurrent:mlstm_recurrent_sequence__native_fw", f"{_MLSTM}.chunkwise:mlstm_chunkwise__native_autograd"),
        ("gradients",),
        "mlstm_kernels/torch/parallel/native/fw.py::mlstm_parallel_fw (and its stablef, recurrent-step and "
        "chunkwise copies) floors the normalizer with `vecN = torch.maximum(|Σ C̃|, torch.exp(-vecM))`. When the "
        "stabilizer m of a step falls below −88.7 (every log-gate of the step's window very negative, e.g. a "
        "forget pre-activation of −104), `exp(-m)` overflows to inf in float32: the output of that step is "
        "still right (0, the true value underflows), but autograd's backward of `maximum` and of the division "
        "multiplies 0 by inf, and the NaN reaches the gates of earlier steps through `max`. float64 (or "
        "clamping the exponent, as the custom-backward chunkwise form effectively does) gives finite O(1) "
        "gradients.",
        "tests/peers/test_findings.py::test_mlstm_nan_input_gate_gradient",
    ),
    Finding(
        "mlstm_custbw_normalizer_gradient",
        "the custom backward drops the normalizer's gradient: q, k and gate gradients off by O(1)",
        "bug",
        (f"{_MLSTM}.chunkwise:mlstm_chunkwise__native_custbw",),
        ("gradients",),
        "mlstm_kernels/torch/chunkwise/native/bw.py: the backward takes the forward's normalizer `vecN_out` as "
        "an input and differentiates h_t = Σ_s C̃_ts v_s / n_t with n_t held constant, but n_t = max(|Σ_s C̃_ts|, "
        "e^{−m_t}) depends on q, k and the gates wherever |Σ C̃| is the larger term (almost always). The forward "
        "and the v-gradient are right; the q, k, input- and forget-gate gradients are off by O(1) at ordinary "
        "inputs (normal draws, T = 64). The autograd chunkwise form, the same computation, is right.",
        "tests/peers/test_findings.py::test_mlstm_custbw_normalizer_gradient",
        dtypes=("fp32",),
    ),
    Finding(
        "mlstm_chunkwise_bf16_states",
        "bf16 inputs: the chunkwise forms keep and return their states in bf16, and raise on a float32 initial state",
        "bug",
        (f"{_MLSTM}.chunkwise:mlstm_chunkwise__native_autograd", f"{_MLSTM}.chunkwise:mlstm_chunkwise__native_custbw"),
        ("forward", "final_state", "state_passing", "chunk_size", "no_mutation", "nan_poison", "determinism",
         "contract", "finite", "gradients", "permutation"),
        "mlstm_kernels/torch/chunkwise/native/fw.py: the inter-chunk states C, n, m are computed and stored in the "
        "inputs' dtype, so with bf16 inputs every chunk reads a state rounded to bf16 (the output drifts beyond "
        "the mixed-bf16 contract after the first chunk; the final state C is about 20× outside it) and the "
        "returned states are bf16 — where the recurrent form keeps float32 states. Passing those states back is "
        "fine, but a float32 initial state (what the same functions return for fp32 inputs) raises `RuntimeError: "
        "expected scalar type Float but found BFloat16` in the first chunk's matmul.",
        "tests/peers/test_findings.py::test_mlstm_chunkwise_bf16_states",
        dtypes=("bf16",),
    ),
    Finding(
        "comba_naive_recurrent_decays_before_the_error",
        "fla-core's recurrent Comba reference computes a different recurrence from its chunk reference and kernels",
        "bug",
        ("fla.ops.comba.naive:naive_recurrent_comba",),
        ("forward", "final_state", "state_passing", "varlen", "nan_poison", "determinism", "negative_eigenvalues",
         "gradients", "finite"),
        "fla/ops/comba/naive.py::naive_recurrent_comba decays the state before the error read — "
        "`h = h * g.exp(); b_v = b_v - (h * b_p[..., None]).sum(-2)` — so u_t = β_t (v_t − (e^{g_t} S_{t−1})ᵀ p_t), "
        "the gated delta rule's order. Comba (Hu et al. 2025) and fla-core's own naive_chunk_comba, chunk_comba "
        "and fused_recurrent_comba read the state before the decay, u_t = β_t (v_t − S_{t−1}ᵀ p_t). The two "
        "agree only where every gate is 0; the error grows with |g| (O(1) at g = −1).",
        "tests/peers/test_findings.py::test_comba_naive_recurrent_decays_before_the_error",
    ),
    Finding(
        "kda_naive_chunk_nan_gradient",
        "NaN gradients under strong (legal) gates: the exponential is taken before the causal mask",
        "bug",
        ("fla.ops.kda.naive:naive_chunk_kda",),
        ("gradients",),
        "fla/ops/kda/naive.py::naive_chunk_kda builds the chunk's KKᵀ matrix as "
        "`k * (g - g_i).exp()` for every row of the chunk and masks the upper triangle afterwards "
        "(`A.masked_fill(mask, 0)`). Above the diagonal g − g_i is minus a partial sum of log-gates, so with "
        "strong gates (a within-chunk sum below −88.7) the masked entries are e^{+x} = inf in float32: the "
        "forward is right (they are masked to 0), but autograd's backward of exp multiplies the mask's zero "
        "gradient by inf, and NaN flows to q, k, g and β. Masking the exponent (or clamping it at 0) before "
        "exp fixes it; fla-core's naive_recurrent_kda and its Triton kernels do not have it.",
        "tests/peers/test_findings.py::test_kda_naive_chunk_nan_gradient",
    ),
    Finding(
        "fla_fused_recurrent_gva_unchecked",
        "accepts more value heads than key heads without a check and returns unwritten memory for the extra ones",
        "bug",
        tuple(f"fla.ops.{m}:fused_recurrent_{m}" for m in ("linear_attn", "gla", "simple_gla", "retention",
                                                           "delta_rule")),
        ("forward", "final_state", "state_passing", "varlen", "causality", "nan_poison", "determinism", "contract",
         "negative_eigenvalues", "gradients", "permutation", "finite", "no_mutation"),
        "fla/ops/common/fused_recurrent.py::fused_recurrent_fwd (behind fused_recurrent_gla, _simple_gla, "
        "_linear_attn and _retention) and fla/ops/delta_rule/fused_recurrent.py::fused_recurrent_delta_rule_fwd read "
        "`B, T, H, K, V = *k.shape, v.shape[-1]`, allocate the output like v — `q.new_empty(NK, *v.shape)`, HV "
        "heads — and the final state with H heads, and launch `NV * NK * N * H` programs that index v with the "
        "key head count. With v of HV > H heads nothing refuses: part of the output is never written "
        "(`new_empty`: whatever the allocator held — values like 5e-42 that change when unrelated inputs change, "
        "which the causality property sees), the rest reads the wrong value rows, and the final state has H "
        "heads. These families have no grouped value heads in fla-core 0.6.0; a shape check (or broadcasting q, k) "
        "is missing. fused_recurrent_gated_delta_rule and fused_recurrent_kda, which support them, are right.",
        "tests/peers/test_findings.py::test_fla_fused_recurrent_gva_unchecked",
        dtypes=("fp32",),
    ),
    Finding(
        "fla_naive_float32_output",
        "returns float32 outputs for bfloat16 inputs",
        "bug",
        ("fla.ops.comba.naive:naive_chunk_comba", "fla.ops.comba.naive:naive_recurrent_comba",
         "fla.ops.gated_delta_rule.naive:naive_chunk_gated_delta_rule",
         "fla.ops.gated_delta_rule.naive:naive_recurrent_gated_delta_rule",
         "fla.ops.simple_gla.naive:naive_chunk_simple_gla", "fla.ops.simple_gla.naive:naive_parallel_simple_gla"),
        ("contract",),
        "the references cast their inputs to float32 first (`.to(torch.float32)` in fla/ops/comba/naive.py, "
        "gated_delta_rule/naive.py, simple_gla/naive.py) and never back: the comba and gated-delta-rule ones "
        "allocate the output with `.to(v)` after v was cast, naive_parallel_simple_gla reads `dtype = q.dtype` "
        "after the cast, naive_chunk_simple_gla returns the float32 result as is. The values are accurate (more "
        "than the bf16 contract asks); a caller gets a silent dtype change where the function's Triton "
        "counterparts return the inputs' dtype.",
        "tests/peers/test_findings.py::test_fla_naive_float32_output",
        dtypes=("bf16",),
    ),
    Finding(
        "mamba2_ssd_ref_nan_dt_gradient",
        "NaN dt gradients when a chunk's decays sum below −88.7: the exponential is taken before the causal mask",
        "bug",
        ("mamba_ssm.ops.triton.ssd_combined:ssd_chunk_scan_combined_ref",),
        ("gradients",),
        "mamba_ssm/ops/triton/ssd_chunk_scan.py::chunk_scan_ref forms `decay = torch.exp(dt_segment_sum)` from "
        "`dA_cumsum[..., :, None] - dA_cumsum[..., None, :]` for every pair of the chunk and masks the pairs s > l "
        "afterwards (`masked_fill(~causal_mask, 0)`; ssd_state_passing.py::state_passing_ref does the same across "
        "chunks). Above the diagonal the exponent is minus a partial sum of dt·A ≤ 0, so once a chunk's decays sum "
        "below −88.7 (dt = 2, A = −1 over 64 steps) the masked entries are inf in float32: the forward is right, "
        "but autograd's backward of exp multiplies the mask's zero gradient by inf and NaN reaches dt (and A). "
        "Masking the exponent before exp (as the Triton kernels do) fixes it.",
        "tests/peers/test_findings.py::test_mamba2_ssd_ref_nan_dt_gradient",
    ),
    Finding(
        "mamba2_ssd_ref_float32_output",
        "returns float32 outputs for bfloat16 inputs",
        "bug",
        ("mamba_ssm.ops.triton.ssd_combined:ssd_chunk_scan_combined_ref",),
        ("contract",),
        "mamba_ssm/ops/triton/ssd_chunk_scan.py::chunk_scan_ref adds the inter-chunk term "
        "`einsum(C, prev_states) * state_decay_out`, where state_decay_out = exp(dA_cumsum) is float32 "
        "(ssd_chunk_scan_combined_ref casts dt to float32 before the cumsum), to the bf16 intra-chunk term: type "
        "promotion makes the output float32. The values are within the contract; the dtype is not the inputs' "
        "(mamba_chunk_scan_combined, its Triton counterpart, returns the inputs' dtype).",
        "tests/peers/test_findings.py::test_mamba2_ssd_ref_float32_output",
        dtypes=("bf16",),
    ),
)


def explain(target: str, prop: str, dtype: str) -> Finding | None:
    """The finding that explains ``prop`` failing for ``target`` in ``dtype``, or None."""
    return next((f for f in FINDINGS if f.explains(target, prop, dtype)), None)
