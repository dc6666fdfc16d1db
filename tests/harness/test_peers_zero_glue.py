"""The field's functions certified as their users call them: no wrapper, no flag. fla-core's naive
references and HF transformers' torch fallback are spelled and laid out differently from lrnnspec's
spec (``query``/``key``/``value``, heads-first, ``beta`` before ``g``, no ``scale``, no ``cu_seqlens``,
an opaque ``(*args, **kwargs)`` signature); the conventions, the table of known peer functions and the
negotiated scope absorb all of it, and each is certified within the scope it states."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

PEERS = [
    ("fla", "fla.ops.gated_delta_rule.naive:naive_recurrent_gated_delta_rule", "gated_delta_rule",
     {"grouped_value_heads", "varlen", "chunk_size"}),
    ("fla", "fla.ops.simple_gla.naive:naive_chunk_simple_gla", "simple_gla", {"grouped_value_heads", "varlen"}),
    ("fla", "fla.ops.delta_rule.naive:delta_rule_recurrence", "delta_rule",
     {"grouped_value_heads", "varlen", "chunk_size", "scale"}),
    ("transformers", "transformers.models.qwen3_next.modeling_qwen3_next:torch_chunk_gated_delta_rule",
     "gated_delta_rule", {"varlen", "scale"}),
]


@pytest.mark.parametrize("package, target, family, unsupported", PEERS, ids=[p[1].split(":")[1] for p in PEERS])
def test_a_peer_function_is_certified_with_no_glue_within_its_scope(package, target, family, unsupported, tmp_path):
    pytest.importorskip(package)
    run = subprocess.run([sys.executable, "-m", "lrnnspec", "certify", target, "--family", family, "--profile", "dev",
                          "--out", str(tmp_path)], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    cert = json.loads(next(tmp_path.glob("*.json")).read_text())
    failing = [f"{v['property']}: {v['reason']}" for v in cert["verdicts"] if v["status"] in ("fail", "error")]
    assert run.returncode == 0, "\n".join(failing) or run.stderr[-3000:]
    assert set(cert["scope"]["unsupported"]) == unsupported, cert["scope"]
    assert run.stderr.strip().splitlines()[-1].startswith("CERTIFIED (fp32; unsupported: ")
    passed = {v["property"] for v in cert["verdicts"] if v["status"] == "pass"}
    assert {"forward", "final_state", "state_passing", "gradients", "causality"} <= passed
