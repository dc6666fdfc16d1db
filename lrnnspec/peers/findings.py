"""What the certifier found in the field's kernels, explained: one record per finding, matched to the
failing rows of ``reports/conformance-peers.md`` by (function, property, dtype). The counterexample,
expected and observed values come from the certificate; the record adds what the harness cannot
know — where the cause lives in the peer's source, and whether it is a bug, a documented
limitation, or a precision effect within the peer's own contract. Each record names the test that
reproduces it with a small float64 computation outside the harness (``tests/peers/test_findings.py``),
so a finding cannot be an artefact of the harness.

A record of kind ``certifier`` is the other way round: the row's recorded failure was the certifier's own
(a tolerance or harness error fixed since the certificate was written — its counterexample no longer
reproduces under ``lrnnspec replay``); its test shows, in float64, that the peer's deviation there is no
larger than what the precision contract allows.
"""

from __future__ import annotations

from dataclasses import dataclass

KINDS = ("bug", "documented limitation", "precision", "certifier")


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
        "gradients. (bf16 inputs overflow the same way, but the bf16 rows' recorded gradient failures are other "
        "effects: mlstm_bf16_autograd_gradients, mlstm_chunkwise_bf16_states.)",
        "tests/peers/test_findings.py::test_mlstm_nan_input_gate_gradient",
        dtypes=("fp32",),
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
        "mlstm_parallel_bf16_log_gates",
        "bf16 inputs: the parallel forms compute the forget gates' log-sums and the decay matrix in bf16 — "
        "an error that grows with the sequence length",
        "bug",
        (f"{_MLSTM}.parallel:mlstm_parallel__native_autograd", f"{_MLSTM}.parallel:mlstm_parallel__native_stablef_autograd"),
        ("forward", "nan_poison", "determinism"),
        "mlstm_kernels/torch/parallel/native/fw.py::mlstm_parallel_fw keeps the inputs' dtype throughout: "
        "`vecLogSigF = F.logsigmoid(vecF)` and `vecLogSigF_cumsum = vecLogSigF.cumsum(-1)` round every prefix sum "
        "F_t = Σ_{r≤t} log σ(f_r) to bf16 — an absolute error up to 2⁻⁹·|F_t|, growing with t — and the decay "
        "exponents `matLogSigF = F_t − F_s` inherit it (with f = 3, F reaches −50 at T = 1024, where bf16's spacing "
        "is 0.25 while one step's log-gate is −0.049: nearby tokens' decays are off by tens of percent). "
        "native_stablef/fw.py sums each exponent directly (`matLogSigF_tril.cumsum(-2)`), a relative error "
        "2⁻⁹ on each exponent, then rounds `matLogD`, `torch.exp(matLogD_stabilized)` and `matS * matD` to bf16. "
        "A float64 model rounding at exactly these points reproduces the certificates' outputs bit for bit; "
        "without the bf16 prefix sums the native form's forward case drops from 1.23× to 0.52× the budget, and "
        "an evaluation that rounds only what the mixed-bf16 contract allows (C, the operand of C @ V) stays at "
        "0.04×. Beyond the contract (fp32 accumulation): the recurrent form keeps its states in fp32, and the "
        "same functions on fp32 inputs are exact to the output rounding.",
        "tests/peers/test_findings.py::test_mlstm_parallel_bf16_log_gates",
        dtypes=("bf16",),
    ),
    Finding(
        "mlstm_recurrent_bf16_log_forget_gate",
        "bf16 inputs: the recurrent form rounds each log forget gate to bf16 before its fp32 stabilizer state "
        "adds it up",
        "precision",
        (f"{_MLSTM}.recurrent:mlstm_recurrent_sequence__native_fw",),
        ("state_passing",),
        "mlstm_kernels/torch/recurrent/native_step.py::mlstm_recurrent_step__native_fw computes `scaF_log = "
        "torch.nn.functional.logsigmoid(scaF)` in the inputs' dtype and only then adds it to the float32 "
        "stabilizer (`scaM_state_new = torch.max(scaF_log + scaM_old, scaI)`): every step's log-gate carries a "
        "relative error up to 2⁻⁹ and the returned m sums them (the recorded case: m off by 7.8e-5 after 63 "
        "steps — 2.55× the budget as recorded, 1.48× with the operand term). The result is the exact mLSTM of log-gates perturbed by less than one bf16 "
        "rounding of f itself perturbs them — a precision effect of computing the gate in bf16 (the contract's "
        "transcendental results are fp32), not a defect of the recurrence.",
        "tests/peers/test_findings.py::test_mlstm_recurrent_bf16_log_forget_gate",
        dtypes=("bf16",),
    ),
    Finding(
        "mlstm_bf16_autograd_gradients",
        "bf16 inputs: autograd differentiates the bf16 forward graph, so the gradients carry several bf16 "
        "roundings (1–5 bf16 ulps of the gradient's scale)",
        "precision",
        (f"{_MLSTM}.parallel:mlstm_parallel__native_autograd", f"{_MLSTM}.parallel:mlstm_parallel__native_stablef_autograd",
         f"{_MLSTM}.recurrent:mlstm_recurrent_sequence__native_fw"),
        ("gradients",),
        "mlstm_kernels/torch/parallel/native/fw.py::mlstm_parallel_fw (and native_stablef/fw.py, "
        "recurrent/native_step.py::mlstm_recurrent_step__native_fw) run their bf16 inputs through bf16 "
        "operations (`matQ @ matK.transpose(-2, -1)`, `matS * matD`, `matCtilde / (vecN + eps)`, `vecQ_scaled @ "
        "matC_state_new.to(dtype=dtype_qkv)`), and the _autograd forms have no backward of their own: autograd "
        "returns every backward intermediate in bf16 and sums each input's contributions in bf16. The recorded "
        "failures are 1.01–1.34× the gradient rule's budget (one bf16 ulp of the gradient's scale beyond "
        "fp32-level error); the same functions on fp32 inputs, rounded once to bf16, stay within half an ulp. "
        "Beyond the mixed-bf16 contract (fp32 accumulation), within what computing in bf16 gives.",
        "tests/peers/test_findings.py::test_mlstm_bf16_autograd_gradients",
        dtypes=("bf16",),
    ),
    Finding(
        "fla_naive_chunk_linear_attn_bf16_backward",
        "bf16 inputs: autograd differentiates the bf16 chunk reference, so its gradients carry several bf16 "
        "roundings",
        "precision",
        ("fla.ops.linear_attn.naive:naive_chunk_linear_attn",),
        ("gradients",),
        "fla/ops/linear_attn/naive.py::naive_chunk_linear_attn computes in the inputs' dtype (its sibling "
        "naive_recurrent_linear_attn casts to float32 first): autograd's backward of `k.transpose(-1, -2) @ v`, "
        "`kv.cumsum(2)` and `q @ k.transpose(-1, -2)` returns bf16 partial gradients, and k's two contributions "
        "— through the chunk states kᵀv and through the intra-chunk scores q kᵀ — are added in bf16. The recorded "
        "failure is 1.07× the rule's budget (got −472 where the gradient is −469.83: the nearest bf16 is −470); "
        "the same function on fp32 inputs, rounded once to bf16, stays within half an ulp.",
        "tests/peers/test_findings.py::test_fla_naive_chunk_linear_attn_bf16_backward",
        dtypes=("bf16",),
    ),
    Finding(
        "log_linear_attn_naive_needs_every_level",
        "raises IndexError unless level_scales has ⌈log₂T⌉ + 1 levels or more, where chunk_log_linear_attn "
        "weighs the missing levels 0",
        "bug",
        ("fla.ops.log_linear_attn.naive:naive_log_linear_attn",),
        ("forward", "final_state", "state_passing", "causality", "no_mutation", "nan_poison", "determinism",
         "contract", "finite", "gradients", "permutation"),
        "fla/ops/log_linear_attn/naive.py::construct_H_matrix loops `for level in range(int(np.ceil(np.log2(T))) "
        "+ 1)` and construct_level_mask reads `L[..., level, :]` without comparing it with the number of levels "
        "given: with fewer (T = 2 and one level is the smallest case) every call raises `IndexError: index 1 is out "
        "of bounds`. chunk_log_linear_attn, which the reference stands for (\"the same scaling as the chunk "
        "operator\"), takes any number of levels — its docstring says `[B, T, H, L]` and its kernel loads the "
        "missing ones as 0 — and so does the spec. With enough levels the reference agrees with the spec to "
        "1e-15 in float64; fla-core's tests always pass exactly ⌈log₂T⌉ + 1.",
        "tests/peers/test_findings.py::test_log_linear_attn_naive_needs_every_level",
    ),
    Finding(
        "certifier_bf16_operand_rounding",
        "bf16 roundings of the size the mixed-bf16 contract allows a chunked kernel were outside the tolerance "
        "(fixed: the operand term C_OP · u_op · M)",
        "certifier",
        ("fla.ops.linear_attn.naive:naive_chunk_linear_attn", f"{_MLSTM}.recurrent:mlstm_recurrent_sequence__native_fw"),
        ("forward", "final_state", "nan_poison", "determinism"),
        "The mixed-bf16 contract rounds dot operands to bf16, and a chunked kernel forms operands the sequential "
        "baseline never forms: fla/ops/linear_attn/naive.py::naive_chunk_linear_attn rounds the intra-chunk "
        "scores `q @ k.transpose(-1, -2)` to bf16 before multiplying by v — as fla-core's Triton chunk kernels do "
        "(fla/ops/common/chunk_o.py: `tl.dot(b_A.to(b_v.dtype), b_v)`) — an error up to 2⁻⁸·Σ_s|q·k_s||v_s|, where "
        "the sequential baseline's is 2⁻⁸·|S||q|. Under cancellation (K = 1, q large, the normalized read-out) the "
        "tolerance — 24× the baseline plus fp32-level terms — rejected it: a float64 model rounding only the "
        "scores reached 1.13× the budget on the forward case, the peer 1.18×. The determinism case (2 bf16 ulps "
        "at t = 0) adds the normalizer's `(q * k_cum)` products rounded to bf16 before their sum; "
        "mlstm_kernels/torch/recurrent/native_step.py::mlstm_recurrent_step__native_fw returns its dot products "
        "`vecQ_scaled @ matC_state_new.to(dtype_qkv)` and `@ vecN_state_new.to(dtype_qkv)` in bf16 before the "
        "division and rounds the written products `vecK[..., None] @ vecV[..., None, :]` to bf16 (forward 1.84×, "
        "final state C 1.0×, nan_poison 2.5×, determinism 1.35×) — single extra roundings of formed terms, of "
        "the size an operand rounding has. lrnnspec/harness/tolerance.py now grants C_OP · u_op · M (u_op the "
        "contract's operand unit roundoff where it is narrower than the accumulator, M the magnitude envelope): "
        "`lrnnspec replay` of these counterexamples passes; the rows' other failures stand.",
        "tests/peers/test_findings.py::test_certifier_bf16_operand_rounding",
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
         "fla.ops.simple_gla.naive:naive_chunk_simple_gla", "fla.ops.simple_gla.naive:naive_parallel_simple_gla",
         "fla.ops.mesa_net.naive:naive_mesa_net_exact"),
        ("contract",),
        "the references cast their inputs to float32 first (`.to(torch.float32)` in fla/ops/comba/naive.py, "
        "gated_delta_rule/naive.py, simple_gla/naive.py; `.float()` in mesa_net/naive.py::naive_mesa_net_exact, "
        "which returns its float32 solve as is) and never back: the comba and gated-delta-rule ones "
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
