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
        "fla_naive_float32_output",
        "returns float32 outputs for bfloat16 inputs",
        "bug",
        ("fla.ops.comba.naive:naive_chunk_comba", "fla.ops.comba.naive:naive_recurrent_comba",
         "fla.ops.gated_delta_rule.naive:naive_chunk_gated_delta_rule",
         "fla.ops.gated_delta_rule.naive:naive_recurrent_gated_delta_rule"),
        ("contract",),
        "the references cast every input to float32 (`map(lambda x: x.transpose(1, 2).contiguous().to(torch.float32), "
        "...)`) and allocate the output with `.to(v)` after v was cast, so the output keeps float32 where the "
        "function's Triton counterparts return the inputs' dtype. The values are accurate (more than the "
        "bf16 contract asks); a caller that feeds the result to bf16 code gets a silent dtype change.",
        "tests/peers/test_findings.py::test_fla_naive_float32_output",
        dtypes=("bf16",),
    ),
)


def explain(target: str, prop: str, dtype: str) -> Finding | None:
    """The finding that explains ``prop`` failing for ``target`` in ``dtype``, or None."""
    return next((f for f in FINDINGS if f.explains(target, prop, dtype)), None)
