"""The HF comparison of ``lrnnspec bench`` (:mod:`lrnnspec.peers.hf`): on the inputs the benchmark draws, our
chunk form and HF transformers' torch fallback, called through the adapter, compute the same outputs
(small shapes, both head layouts; no timing), and ``reports/bench.md`` renders their rows from a
hand-written run. HF's functions are compiled from transformers' source (:meth:`HFReference.from_source`,
the code the public names run on CPU) so that the test does not pay for importing transformers."""

import pytest
import torch

from lrnnspec.bench import report, suite
from lrnnspec.peers.hf import CHUNK_REFERENCES

SMALL = dict(suite.SIZES, T=160, H=2, K=16, V=16)     # three chunks of 64, the last one padded by HF


def _source(family):
    """The family's HF fallback compiled from source, or a skip saying why it cannot be."""
    try:
        return CHUNK_REFERENCES[family].from_source()
    except (ImportError, KeyError) as e:
        pytest.skip(f"transformers' {CHUNK_REFERENCES[family].target} is not available: {e!r}")


@pytest.mark.parametrize("heads", [{}, {"HV": 4}], ids=["H=HV", "HV=2H"])
@pytest.mark.parametrize("family", sorted(CHUNK_REFERENCES))
def test_both_sides_compute_the_same_outputs(family, heads):
    """Float64 inputs: ours computes in float64 (the spec's recurrence to ~1e-15), HF casts to float32
    inside, so the two agree to float32's rounding — a convention slip (scale, grouping, gate layout,
    l2-normalization) would be off by O(1)."""
    fn = _source(family)
    sizes = SMALL | heads
    x = suite.inputs(family, sizes=sizes, dtype=torch.float64)
    ours = suite._first(suite._call(suite._chunk_form(family), x, sizes))
    theirs = suite._first(CHUNK_REFERENCES[family](x, fn=fn))
    assert theirs.shape == ours.shape == (1, sizes["T"], sizes.get("HV", sizes["H"]), sizes["V"])
    assert theirs.dtype == ours.dtype == torch.float64
    scale = ours.abs().max().item()
    torch.testing.assert_close(theirs, ours, rtol=0, atol=2e-5 * max(scale, 1.0))


def test_olmo_hybrid_copy_is_the_same_code():
    ref = CHUNK_REFERENCES["gated_delta_rule"]
    _source("gated_delta_rule")
    try:
        same = ref.copies_identical()
    except (ImportError, KeyError) as e:
        pytest.skip(f"a copy is not available: {e!r}")
    assert same and all(same.values()), same


def _entry(name, median, **extra):
    return {"name": name, "extra_info": extra, "stats": {"median": median}}


def test_report_rows_ratios_and_fractions_of_matmul():
    """Made-up times (no measurement): the ratios come from each row's side-by-side medians, the fractions
    from the FLOPs (forward + backward counted 3×) over the matmul's rate."""
    run = {"datetime": "2000-01-01T00:00:00", "machine_info": {}, "benchmarks": [
        _entry("test_matmul", 0.1, flops=1e10),
        _entry("test_matmul_chunk", 0.01, flops=5e8, batch=256),
        _entry("test_hf_forward[gated_delta_rule-H4]", 1.0, family="gated_delta_rule", form="hf", shape="H4",
               flops=2e8, chunk_flops=4e8, ours=0.010, hf=0.030, load=5.0, cores=2),
        _entry("test_hf_backward[gated_delta_rule-H4]", 1.0, family="gated_delta_rule", form="hf", shape="H4",
               flops=2e8, chunk_flops=4e8, ours=0.100, hf=0.150, load=1.0, cores=2),
    ]}
    text = report.render(run).split("## Ours vs HF")[1]
    (row,) = [ln for ln in text.splitlines() if ln.startswith("| gated_delta_rule | `") and "| H = 4 |" in ln]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2:] == ["H = 4", "10.0", "30.0", "3.0× ✓", "100.0", "150.0", "1.5× ✗"]
    # nominal 2e8 FLOPs in 10 ms = 20 GFLOP/s = 20% of 100 GFLOP/s; chunk FLOPs 4e8 in 10 ms = 80% of the
    # batched rate 50 GFLOP/s, whose floor is 8 ms: HF's 30 ms is 3.8× it
    assert "| gated_delta_rule | H = 4 | 20.0 (20.0%) | 6.7 (6.7%) | 6.0 (6.0%) | 4.0 (4.0%) | 0.40 | 80.0% " \
           "| 8.0 | 3.8× |" in text
    assert "| kda | `chunk_kimi_delta_attention` | H = 4, HV = 8 | — |" in text
    header = report.render(run).split("## ")[0]
    assert "batched 64×64 matmul (the chunk forms' blocks, 256 per call): 50.0 GFLOP/s, 50.0% of it" in header
    assert "load average 1.0–5.0 on 2 cores" in header and "other processes shared the CPUs" in header
