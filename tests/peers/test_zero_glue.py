"""The field's functions certified as their users call them: no wrapper, no flag. fla-core's naive
references and HF transformers' torch fallback are spelled and laid out differently from lrnnspec's
spec (``query``/``key``/``value``, heads-first, ``beta`` before ``g``, no ``scale``, no ``cu_seqlens``,
an opaque ``(*args, **kwargs)`` signature); the conventions, the table of known peer functions and the
negotiated scope absorb all of it, and each is certified within the scope it states."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest


STATEFUL = {"forward", "final_state", "state_passing", "gradients", "causality"}
PEERS = [   # (package, target, family, unsupported features, properties (None: all), expected to pass)
    ("fla", "fla.ops.gated_delta_rule.naive:naive_recurrent_gated_delta_rule", "gated_delta_rule",
     {"grouped_value_heads", "varlen", "chunk_size"}, None, STATEFUL),
    ("fla", "fla.ops.simple_gla.naive:naive_chunk_simple_gla", "simple_gla", {"grouped_value_heads", "varlen"},
     None, STATEFUL),
    ("fla", "fla.ops.delta_rule.naive:delta_rule_recurrence", "delta_rule",
     {"grouped_value_heads", "varlen", "chunk_size", "scale"}, None, STATEFUL),
    ("transformers", "transformers.models.qwen3_next.modeling_qwen3_next:torch_chunk_gated_delta_rule",
     "gated_delta_rule", {"varlen", "scale"}, None, STATEFUL),
    # [B, NH, S, D] inputs, (c, n, m) states split over three keywords; its gradients are a finding
    ("mlstm_kernels", "mlstm_kernels.torch.recurrent:mlstm_recurrent_sequence__native_fw", "mlstm",
     {"empty_sequence", "grouped_value_heads", "varlen", "chunk_size", "scale"}, "forward,final_state,state_passing",
     {"forward", "final_state", "state_passing"}),
    # channels-first, no initial state; its module imports a CUDA extension it never calls (a known shim)
    ("mamba_ssm", "mamba_ssm.ops.selective_scan_interface:selective_scan_ref", "mamba",
     {"empty_sequence", "initial_state", "varlen", "chunk_size", "eigenvalue_range"},
     "forward,final_state,gradients,causality",
     {"forward", "final_state", "gradients", "causality"}),
]


@pytest.mark.parametrize("package, target, family, unsupported, properties, passing", PEERS,
                         ids=[p[1].split(":")[1] for p in PEERS])
def test_a_peer_function_is_certified_with_no_glue_within_its_scope(package, target, family, unsupported, properties,
                                                                    passing, tmp_path):
    if importlib.util.find_spec(package) is None:       # (mamba_ssm cannot be imported here: it is only looked up)
        pytest.skip(f"{package} is not installed")
    only = ["--properties", properties, "--examples", "4", "--max-len", "64"] if properties else []
    run = subprocess.run([sys.executable, "-m", "lrnnspec", "certify", target, "--family", family, "--profile", "dev",
                          *only, "--out", str(tmp_path)], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    cert = json.loads(next(tmp_path.glob("*.json")).read_text())
    failing = [f"{v['property']}: {v['reason']}" for v in cert["verdicts"] if v["status"] in ("fail", "error")]
    assert run.returncode == 0, "\n".join(failing) or run.stderr[-3000:]
    assert set(cert["scope"]["unsupported"]) == unsupported, cert["scope"]
    assert run.stderr.strip().splitlines()[-1].startswith("CERTIFIED (fp32; unsupported: ")
    assert passing <= {v["property"] for v in cert["verdicts"] if v["status"] == "pass"}
