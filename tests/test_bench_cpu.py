"""``reports/bench.md``'s renderer on a hand-written pytest-benchmark JSON: which rows it reads, the
ratios it computes and the ✓/✗ it gives them against the issue's targets (no timing is run)."""

import pytest

from lrnnspec.bench import report


def _entry(name, median, **extra):
    """A pytest-benchmark JSON entry with made-up stats (only the median matters to the report)."""
    return {"name": name, "extra_info": extra, "stats": {"median": median}}


@pytest.fixture
def fake_run():
    """Made-up times (none of it is a measurement), chosen to land on both sides of every target."""
    return {
        "datetime": "2000-01-01T00:00:00",
        "machine_info": {"cpu": {"brand_raw": "Made-up CPU"}},
        "benchmarks": [
            _entry("test_matmul", 0.1, flops=1e10),
            _entry("test_forward[simple_gla-recurrent]", 0.5, family="simple_gla", form="recurrent"),
            _entry("test_forward[simple_gla-chunk]", 0.01, family="simple_gla", form="chunk", flops=2e8),
            _entry("test_forward[gla-recurrent]", 0.5, family="gla", form="recurrent"),
            _entry("test_forward[gla-chunk]", 0.1, family="gla", form="chunk", flops=2e8),
            # side by side: each row's median is of the pairs; the sides' medians are in extra_info
            _entry("test_fla_forward[simple_gla]", 0.05, family="simple_gla", form="fla", ours=0.010, fla=0.030),
            _entry("test_fla_backward[simple_gla]", 0.3, family="simple_gla", form="fla", ours=0.100, fla=0.150),
            _entry("test_dag_forward[plstm]", 2.0, family="plstm", kind="dag", recurrent=1.2, chunk=0.05),
        ],
    }


def _row(text, first_cell):
    (line,) = [ln for ln in text.splitlines() if ln.startswith(f"| {first_cell} |")]
    return [c.strip() for c in line.strip("|").split("|")]


def test_chunk_vs_recurrent_ratio_and_fraction_of_matmul(fake_run):
    text = report.render(fake_run).split("## Ours vs fla-core")[0]
    assert _row(text, "simple_gla")[1:] == ["500.0", "10.0", "50.0× ✓", "20.0", "20.0%"]
    assert _row(text, "gla")[1:] == ["500.0", "100.0", "5.0× ✗", "2.0", "2.0%"]
    assert "Made-up CPU" in text and "matmul reference: 100.0 GFLOP/s" in text


def test_fla_ratios_come_from_the_side_by_side_medians(fake_run):
    text = report.render(fake_run)
    fla_table = text.split("## Ours vs fla-core")[1]
    assert _row(fla_table, "simple_gla")[2:] == ["10.0", "30.0", "3.0× ✓", "100.0", "150.0", "1.5× ✗"]
    # a family with no measurement is shown as such, not dropped and not scored
    assert _row(fla_table, "delta_rule")[2:] == ["—"] * 6


def test_plstm_ratio_comes_from_the_side_by_side_medians(fake_run):
    text = report.render(fake_run)
    assert "| 1200.0 | 50.0 | 24.0× ✓ |" in text
    fake_run["benchmarks"][-1]["extra_info"]["chunk"] = 0.1
    assert "| 1200.0 | 100.0 | 12.0× ✗ |" in report.render(fake_run)
