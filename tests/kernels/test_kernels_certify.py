"""Every Triton kernel of lrnnspec.kernels is certified against the spec, in fp32 and fp16, with its
declared precision contract — on CPU through Triton's interpreter (lrnnspec.kernels sets
TRITON_INTERPRET=1 when there is no GPU). The interpreter is slow: a small example budget per
property here; ``lrnnspec conformance --backend triton`` runs the profile's."""

from __future__ import annotations

import pytest

from lrnnspec.harness.certificate import certify
from lrnnspec.impls.registry import implementations

KERNELS = implementations(backends=("triton",))
EXAMPLES = 5


def test_every_triton_family_is_registered():
    assert {k.family for k in KERNELS} == {"gated_delta_rule", "delta_rule", "delta_product", "gla", "simple_gla"}


@pytest.mark.parametrize("dtype", ["fp32", "fp16"])
@pytest.mark.parametrize("kernel", KERNELS, ids=lambda k: k.id)
def test_triton_kernel_is_certified(kernel, dtype):
    cert = certify(kernel.fn, kernel.family, convention=kernel.convention, dtypes=[dtype], max_examples=EXAMPLES,
                   seed=0, contracts=kernel.contracts, target=kernel.target)
    assert cert.contracts[dtype] == kernel.contracts[dtype]
    failed = [f"{v.property}: {v.reason} — {v.counterexample['description']}" for v in cert.verdicts
              if v.status == "fail"]
    assert cert.certified, f"{kernel.id} [{dtype}] not certified:\n" + "\n".join(failed)
    assert {v.property for v in cert.verdicts if v.status == "pass"} >= {"forward", "final_state", "gradients",
                                                                           "varlen", "state_passing"}
