"""Kernels that must compile for an H100 (sm_90) within its shared memory, checked without a GPU: Triton
compiles them for that target in a subprocess (``sm90_compile.py``) and reports what they need.

Two regressions here were found on a lent H100 and passed the interpreter-based tests: the
gated-delta chunk scans at K = V = 128 needed 262 KB / 361 KB of shared memory with Triton's default
three pipeline stages (limit 227 KB), and the simple-GLA dγ kernel failed to compile under Triton 3.6.
The third was found compiling here: the gated-delta backward's local kernel, holding the whole [K, V]
tiles S₀ and dS_C, did not finish compiling in 15 min at K = V = 128 (with 8 warps: 8 min, and 360,448 B of
shared memory); it now loops over blocks of value columns: ≈2 min to compile, 160 KB."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

H100_SHARED_MEMORY = 232_448          # bytes per block, opt-in maximum (sm_90)
SCRIPT = Path(__file__).with_name("sm90_compile.py")


def compile_for_sm90(families: str, k: int, *kernels: str) -> dict:
    proc = subprocess.run([sys.executable, str(SCRIPT), families, str(k), *kernels], capture_output=True, text=True,
                          timeout=600, cwd=SCRIPT.parent)
    if proc.returncode == 3:
        pytest.skip(proc.stderr.strip())
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_chunk_scans_delta_backward_and_gate_gradient_fit_an_h100_at_head_dim_128():
    kernels = {"_fwd_state_kernel", "_bwd_state_kernel", "_bwd_local_kernel", "_gate_grad"}
    got = compile_for_sm90("gated_delta_rule,simple_gla", 128, *sorted(kernels))
    assert set(got) == kernels, got
    for name, r in got.items():
        assert "error" not in r, f"{name} does not compile for sm_90: {r['error']}"
        assert r["shared"] <= H100_SHARED_MEMORY, f"{name} needs {r['shared']} B of shared memory (H100: " \
                                                  f"{H100_SHARED_MEMORY})"
