"""``lrnnspec conformance --backend <peers>`` as a user runs it: the peers' report, its JSON and the
certificates are written apart from lrnnspec's own; each row's ``lrnnspec certify`` command, run as
printed, reproduces the row's verdict; a dtype the function refuses is a scope row, not a failure;
mixing the peers' backends with lrnnspec's own is a usage error."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys

import pytest

from lrnnspec.cli import main

RECURRENT = "fla.ops.linear_attn.naive:naive_recurrent_linear_attn"
CHUNK = "fla.ops.linear_attn.naive:naive_chunk_linear_attn"


def _lrnnspec(*args, cwd):
    return subprocess.run([sys.executable, "-m", "lrnnspec", *args], capture_output=True, text=True, timeout=600,
                          cwd=cwd)


def test_peer_conformance_writes_its_report_and_each_row_command_reproduces_the_row(tmp_path):
    pytest.importorskip("fla")
    run = _lrnnspec("conformance", "--backend", "fla-ref", "--family", "linear_attention", "--profile", "dev",
                    "--examples", "2", "--dtype", "fp32", "--jobs", "1", "--out", str(tmp_path), cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    assert not (tmp_path / "conformance.md").exists()               # lrnnspec's own report is left alone
    md = (tmp_path / "conformance-peers.md").read_text()
    data = json.loads((tmp_path / "conformance-peers.json").read_text())
    assert data["versions"] == {"fla-ref": "0.6.0"} and data["profile"] == "dev"
    rows = {r["target"]: r for r in data["rows"]}
    assert set(rows) == {RECURRENT, CHUNK}
    for target, row in rows.items():
        assert row["verdict"] == "certified" and row["dtype"] == "fp32" and row["failing"] == []
        assert f"`{row['certify']}`" in md and f"`{target.split(':')[1]}`" in md
        stem = f"linear_attention-{target.replace(':', '.')}"
        assert (tmp_path / "certificates-peers" / f"{stem}.json").exists()
    assert "2 of 2 rows certified within their scope" in md

    again = tmp_path / "again"
    words = shlex.split(rows[RECURRENT]["certify"])
    assert words[:2] == ["lrnnspec", "certify"]
    words[words.index("--out") + 1] = str(again)
    rerun = _lrnnspec(*words[1:], cwd=tmp_path)
    assert rerun.returncode == 0 and "CERTIFIED (fp32" in rerun.stdout, rerun.stdout + rerun.stderr[-2000:]
    first = json.loads((tmp_path / "certificates-peers" / f"linear_attention-{RECURRENT.replace(':', '.')}.json")
                       .read_text())
    second = json.loads(next(again.glob("*.json")).read_text())
    assert [(v["property"], v["status"]) for v in first["verdicts"]] == \
           [(v["property"], v["status"]) for v in second["verdicts"]]


def test_a_refused_dtype_is_scope_not_failure(tmp_path):
    """fla-core's chunkwise delta-rule reference mixes an fp32 workspace with bf16 inputs and raises:
    every bf16 property is unsupported with its message, fp32 is certified."""
    pytest.importorskip("fla")
    from lrnnspec.harness.certificate import certify

    cert = certify("fla.ops.delta_rule.naive:delta_rule_chunkwise", "delta_rule", dtypes=["fp32", "bf16"],
                   properties=["forward"], profile="dev", max_examples=2, out=tmp_path)
    assert cert.certified
    assert {v.dtype: v.status for v in cert.verdicts} == {"fp32": "pass", "bf16": "unsupported"}
    assert "RuntimeError" in cert.scope["dtypes"]["bf16"]
    assert cert.summary.startswith("CERTIFIED (fp32; unsupported:") and cert.summary.endswith("bf16)")


def test_peers_and_our_backends_are_not_mixed_in_one_report(tmp_path, capsys):
    assert main(["conformance", "--backend", "torch,fla-ref", "--out", str(tmp_path)]) == 2
    assert "reported apart" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
