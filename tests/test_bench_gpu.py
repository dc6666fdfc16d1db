"""``lrnnspec bench --device cuda``: the CLI's refusal without a GPU, the GPU suite's parametrisation
and FLOP model, and the renderer on a hand-written pytest-benchmark JSON (no GPU needed)."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lrnnspec.bench import gpu_report as report
from lrnnspec.bench import gpu_suite as suite
from lrnnspec.cli import main
from lrnnspec.commands.bench import _Outcomes

ROOT = Path(__file__).resolve().parents[1]
no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")


# --- CLI ----------------------------------------------------------------------------------------------
@no_gpu
def test_cli_refuses_cuda_without_a_gpu(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["bench", "--device", "cuda", "--out", str(out)]) == 3      # could not run here
    err = capsys.readouterr().err
    assert err.startswith("lrnnspec bench: error: --device: no CUDA device is available here (")
    assert not out.exists()                     # nothing written, nothing timed


@no_gpu
def test_cli_refusal_is_the_process_exit_status(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "lrnnspec", "bench", "--device", "cuda", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 3
    assert "--device: no CUDA device is available here" in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_cli_rejects_an_unknown_device(capsys):
    assert main(["bench", "--device", "tpu"]) == 2
    assert "lrnnspec bench: error: --device: invalid choice: 'tpu'" in capsys.readouterr().err


def test_outcomes_plugin_records_skips_and_failures(tmp_path):
    (tmp_path / "test_x.py").write_text(
        "import pytest\n"
        "@pytest.mark.parametrize('n', [1, 2, 3])\n"
        "def test_k(n):\n"
        "    if n == 1: pytest.skip('CUDA out of memory (made up)')\n"
        "    assert n == 3, 'kernel mismatch'\n")
    rec = _Outcomes()
    code = pytest.main([str(tmp_path / "test_x.py"), "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path)],
                       plugins=[rec])
    assert code == 1
    assert rec.outcomes["test_k[1]"] == "skipped: CUDA out of memory (made up)"
    assert rec.outcomes["test_k[2]"].startswith("failed (call): AssertionError: kernel mismatch")
    assert "test_k[3]" not in rec.outcomes


# --- suite: configurations, FLOPs, refusal -----------------------------------------------------------
FAMILIES = ("gated_delta_rule", "gla", "simple_gla")
IMPLS = ("ours-triton", "fla-triton", "ours-pytorch-chunk")
EXPECTED_IDS = {f"{f}-T{t}-{m}-{i}" for f, t, m, i in
                itertools.product(FAMILIES, (2048, 8192), ("fwd", "fwd_bwd"), IMPLS)} | {
                f"gated_delta_rule-T{t}-{m}-{i}-beta0to2" for t, m, i in
                itertools.product((2048, 8192), ("fwd", "fwd_bwd"), ("ours-triton", "ours-pytorch-chunk"))}


def test_suite_shape_matches_the_issue():
    assert (suite.B, suite.H, suite.K, suite.V, suite.TS, suite.DTYPE) == (4, 16, 128, 128, (2048, 8192),
                                                                              torch.bfloat16)
    assert suite.MATMUL_N == 8192
    assert len(suite.CONFIGS) == 44 and {c.id for c in suite.CONFIGS} == EXPECTED_IDS
    entry = {c.impl: c.entry_point for c in suite.CONFIGS if c.family == "gla"}
    assert entry == {"ours-triton": "lrnnspec.kernels.gla:chunk_gla", "fla-triton": "fla.ops.gla:chunk_gla",
                     "ours-pytorch-chunk": "lrnnspec.impls.gla:chunk_gla"}


def test_suite_collects_exactly_the_issue_configurations(capsys):
    code = pytest.main([suite.__file__, "--collect-only", "-q", "-p", "no:cacheprovider",
                        "-o", "python_files=gpu_suite.py"])
    out = capsys.readouterr().out
    assert code == 0
    nodes = [line.split("::", 1)[1] for line in out.splitlines() if "::" in line]
    kernels = {n.removeprefix("test_kernel[").removesuffix("]") for n in nodes if n.startswith("test_kernel[")}
    assert kernels == EXPECTED_IDS and len(nodes) == len(EXPECTED_IDS) + 1
    assert "test_matmul_peak" in nodes


@no_gpu
def test_suite_refuses_to_run_without_cuda(capsys):
    code = pytest.main([suite.__file__, "-q", "-p", "no:cacheprovider", "-o", "python_files=gpu_suite.py",
                        "-k", "matmul or simple_gla-T2048-fwd-fla"])
    captured = capsys.readouterr()
    assert code == 2
    assert "no CUDA device is available" in captured.out + captured.err


def test_flop_model():
    # simple_gla / gla: 2C(K + V) + 4KV = 2·64·256 + 4·128·128 = 98 304 per token, × B·H·T = 4·16·2048
    assert suite.forward_flops("simple_gla", 2048) == 12_884_901_888
    assert suite.forward_flops("gla", 8192) == 4 * 12_884_901_888
    # gated_delta_rule: 6CK + 4CV + 6KV + C²/3 = 49 152 + 32 768 + 98 304 + 4096/3
    assert suite.forward_flops("gated_delta_rule", 2048) == pytest.approx(131072 * (180224 + 4096 / 3), rel=1e-12)
    assert suite.flops("gla", 2048, "fwd+bwd") == 3 * suite.flops("gla", 2048, "fwd")
    with pytest.raises(ValueError, match="family"):
        suite.forward_flops("mamba", 2048)
    with pytest.raises(ValueError, match="mode"):
        suite.flops("gla", 2048, "bwd")


# --- renderer ------------------------------------------------------------------------------------------
def _entry(name, median, **extra):
    """A pytest-benchmark JSON entry with made-up stats (only the median matters to the report)."""
    return {"name": name, "group": None, "extra_info": extra,
            "stats": {"min": median * 0.9, "max": median * 1.2, "mean": median * 1.01, "stddev": median * 0.02,
                      "median": median, "iqr": median * 0.01, "rounds": 10, "iterations": 1}}


@pytest.fixture
def fake_run():
    """A small, hand-written run: made-up times on a made-up device (none of it is a measurement)."""
    fl = 12_884_901_888                               # simple_gla / gla forward FLOPs at T = 2048
    return {
        "datetime": "2000-01-01T00:00:00",
        "machine_info": {"node": "fixture"},
        "benchmarks": [
            _entry("test_matmul_peak", 0.002, flops=2.0 * 8192 ** 3, n=8192,
                   device_info={"name": "Made-up GPU", "capability": "sm_90", "sm_count": 132, "memory_gib": 79.6,
                                "cuda": "12.4"},
                   versions={"torch": "9.9", "triton": "9.9", "fla-core": "0.6.0"}),
            _entry("test_kernel[simple_gla-T2048-fwd-ours-triton]", 0.0004, flops=fl, rel_err_vs_fla=3.1e-3),
            _entry("test_kernel[simple_gla-T2048-fwd-fla-triton]", 0.0005, flops=fl),
            _entry("test_kernel[simple_gla-T2048-fwd-ours-pytorch-chunk]", 0.004, flops=fl, rel_err_vs_fla=2e-3),
            _entry("test_kernel[simple_gla-T2048-fwd_bwd-ours-triton]", 0.0018, flops=3 * fl),
            _entry("test_kernel[simple_gla-T2048-fwd_bwd-fla-triton]", 0.0015, flops=3 * fl),
            _entry("test_kernel[gla-T2048-fwd-ours-triton]", 0.0005, flops=fl),
            _entry("test_kernel[gla-T2048-fwd-fla-triton]", 0.0005, flops=fl),
            _entry("test_kernel[gated_delta_rule-T2048-fwd-fla-triton]", 0.0009, flops=23_801_277_098.67),
            _entry("test_kernel[gated_delta_rule-T2048-fwd-ours-triton-beta0to2]", 0.001, flops=23_801_277_098.67),
        ],
        "outcomes": {"test_kernel[gla-T8192-fwd_bwd-ours-pytorch-chunk]": "skipped: CUDA out of memory (fixture)"},
    }


def _rows(md: str, section: str) -> list[str]:
    part = md.split(f"## {section} — ", 1)[1].split("\n## ", 1)[0]
    return [line for line in part.splitlines() if line.startswith("| ") and not line.startswith("| T |")]


def test_renderer_rows_ratios_and_marks(fake_run):
    md = report.render(fake_run)
    simple, gla, gdn = _rows(md, "simple_gla"), _rows(md, "gla"), _rows(md, "gated_delta_rule")
    assert len(simple) == len(gla) == 12 and len(gdn) == 20
    # 12.88 GFLOP / 0.4 ms = 32.2 TFLOP/s; peak 2·8192³ / 2 ms = 549.8 TFLOP/s → 5.9 %; 0.4 / 0.5 = 0.80 ✓
    assert simple[0] == "| 2048 | fwd | ours (Triton) | 0.400 | 32.2 | 5.9% | 0.80 ✓ | 3.1e-03 |"
    assert simple[1] == "| 2048 | fwd | fla-core (Triton) | 0.500 | 25.8 | 4.7% | 1 (reference) | — |"
    assert simple[2] == "| 2048 | fwd | ours (PyTorch chunk) | 4.000 | 3.2 | 0.6% | 8.00 ✗ | 2.0e-03 |"
    # fwd+bwd counts 3 × forward FLOPs: 38.65 GFLOP / 1.8 ms = 21.5 TFLOP/s; 1.8 / 1.5 = 1.20 ✗
    assert simple[3] == "| 2048 | fwd+bwd | ours (Triton) | 1.800 | 21.5 | 3.9% | 1.20 ✗ | — |"
    assert simple[6] == "| 8192 | fwd | ours (Triton) | not run | — | — | — | — |"
    assert gla[0] == "| 2048 | fwd | ours (Triton) | 0.500 | 25.8 | 4.7% | 1.00 ✓ | — |"   # equal time meets ≤ 1
    assert gla[11] == "| 8192 | fwd+bwd | ours (PyTorch chunk) | skipped: CUDA out of memory (fixture) | — | — | — | — |"
    # β ∈ [0, 2]: compared with FLA's β ∈ [0, 1] time, in parentheses, never marked
    assert gdn[12] == "| 2048 | fwd | ours (Triton), β ∈ [0, 2] | 1.000 | 23.8 | 4.3% | (1.11) | — |"
    assert gdn[0] == "| 2048 | fwd | ours (Triton) | not run | — | — | — | — |"
    assert "- matmul peak: 549.8 TFLOP/s (8192³ bf16 `torch.matmul`, median 2.000 ms, same run)" in md
    assert "Made-up GPU (sm_90, 132 SMs, 79.6 GiB), CUDA 12.4" in md
    assert "fwd: target ratio ≤ 1.00 met in 2 of 6 configurations (4 without both measurements)" in md
    assert "fwd+bwd: target ratio ≤ 1.00 met in 0 of 6 configurations (5 without both measurements)" in md
    assert "pending" not in md


def test_summary_json(fake_run):
    s = report.summarize(fake_run)
    json.dumps(s)                                                  # serialisable as bench-gpu.json
    rows = {r["id"]: r for r in s["rows"]}
    assert s["status"] == "measured" and len(rows) == 44
    assert s["matmul"]["tflops"] == pytest.approx(2 * 8192 ** 3 / 0.002 / 1e12)
    r = rows["simple_gla-T2048-fwd_bwd-ours-triton"]
    assert (r["ratio_vs_fla"], r["meets_target"]) == (pytest.approx(1.2), False)
    assert r["tflops"] == pytest.approx(3 * 12_884_901_888 / 0.0018 / 1e12)
    assert rows["simple_gla-T2048-fwd-ours-triton"]["meets_target"] is True
    assert rows["gated_delta_rule-T2048-fwd-ours-triton-beta0to2"]["meets_target"] is None
    assert rows["simple_gla-T2048-fwd-fla-triton"]["ratio_vs_fla"] is None
    assert rows["gla-T8192-fwd_bwd-ours-pytorch-chunk"]["status"].startswith("skipped: CUDA out of memory")
    assert s["ours_triton_target"] == {"fwd": {"met": 2, "judged": 2, "rows": 6},
                                       "fwd+bwd": {"met": 0, "judged": 1, "rows": 6}}


def test_placeholder_report():
    md = report.render({"benchmarks": []})
    assert "**Status: pending a GPU.**" in md and "lrnnspec bench --device cuda" in md
    rows = [line for line in md.splitlines() if line.startswith("| 2048 |") or line.startswith("| 8192 |")]
    assert len(rows) == 44 and all(" | pending | — | — | — | — |" in line for line in rows)
    assert "TFLOP/s (" not in md                                   # no matmul number
    committed = ROOT / "reports" / "bench-gpu.md"
    if "Status: pending a GPU" in committed.read_text():           # until a GPU run replaces it
        assert committed.read_text() == md
        assert json.loads((ROOT / "reports" / "bench-gpu.json").read_text()) == report.summarize({"benchmarks": []})


def test_notes_are_rendered_under_the_header(fake_run):
    md = report.render({**fake_run, "notes": ["assembled from two runs"]})
    header = md.split("\n## ", 1)[0]
    assert "- note: assembled from two runs" in header
    assert report.summarize({**fake_run, "notes": ["x"]})["notes"] == ["x"]


def test_committed_report_is_the_rendering_of_its_json():
    summary = json.loads((ROOT / "reports" / "bench-gpu.json").read_text())
    assert (ROOT / "reports" / "bench-gpu.md").read_text() == report.render_summary(summary)
