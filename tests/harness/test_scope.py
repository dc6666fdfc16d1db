"""Capability negotiation as a new user meets it: a correct kernel that lacks one optional feature is
certified with exactly that feature outside its scope; an accepted but ignored input fails; a
required feature that is unsupported fails; a kernel this machine cannot run is "could not run
here", exit 3 — never a kernel failure."""

from __future__ import annotations

import os

import pytest
import torch

from lrnnspec.cli import main
from lrnnspec.harness.certificate import certify
from lrnnspec.harness.targets import load_module_file

LIMITED = load_module_file(os.path.join(os.path.dirname(__file__), "..", "certifier", "limited.py"),
                           "_lrnnspec_limited").LIMITED
# the harness's name for each missing feature (T a multiple of 64 is a constraint, and so not "partial")
FEATURE = {"t_multiple_of_64": "partial_chunk"}
PROPERTIES = ["scope", "forward", "final_state", "state_passing", "varlen", "gradients"]


@pytest.mark.parametrize("kernel", LIMITED, ids=lambda k: k.name)
def test_a_correct_kernel_lacking_one_feature_is_certified_with_it_outside_its_scope(kernel):
    cert = certify(kernel.target, kernel.family, profile="dev", properties=PROPERTIES, database=None)
    problems = [f"{v.property}: {v.status}: {v.reason}" for v in cert.verdicts if v.status in ("fail", "error")]
    assert cert.certified, "\n".join(problems)
    missing = FEATURE.get(kernel.missing, kernel.missing)
    # nothing else is out of scope but what the signature lacks (every kernel here hard-codes its chunk)
    assert set(cert.scope["unsupported"]) == {missing, "chunk_size"}, cert.scope
    if kernel.missing == "t_multiple_of_64":
        assert cert.scope["constraints"] == ["T % 64 == 0"] and "T % 64 ≠ 0" in cert.summary
    statuses = {v.property: v.status for v in cert.verdicts}
    needs = {"final_state": ["final_state", "state_passing"], "initial_state": ["state_passing"],
             "varlen": ["varlen"], "backward": ["gradients"]}
    for prop in needs.get(kernel.missing, []):
        assert statuses[prop] == "unsupported", (prop, statuses)


def test_an_input_the_kernel_accepts_but_ignores_fails_the_scope_naming_it():
    cert = certify(f"{os.path.dirname(__file__)}/scope_kernels.py:ignores_scale", "gated_delta_rule", profile="dev",
                   properties=["scope"], database=None)
    (v,) = cert.verdicts
    assert v.status == "fail" and "accepts 'scale' but ignores it" in v.reason


def test_a_required_feature_that_is_unsupported_fails(capsys):
    target = f"{LIMITED[0].target}"
    code = main(["certify", target, "--family", "gated_delta_rule", "--profile", "dev", "--properties", "scope",
                 "--require", "grouped_value_heads"])
    assert code == 1 and "required feature 'grouped value heads' is unsupported" in capsys.readouterr().out
    assert main(["certify", target, "--family", "gated_delta_rule", "--require", "warp_drive"]) == 2
    assert "lrnnspec certify: error: --require: unknown feature 'warp_drive'; known: " in capsys.readouterr().err


def test_a_kernel_this_machine_cannot_run_is_could_not_run_here_exit_3(tmp_path, capsys):
    code = main(["certify", f"{os.path.dirname(__file__)}/scope_kernels.py:needs_a_gpu_driver", "--family",
                 "gated_delta_rule", "--out", str(tmp_path)])
    captured = capsys.readouterr()
    assert code == 3 and "COULD NOT RUN HERE (RuntimeError: 0 active drivers" in captured.err
    assert next(tmp_path.glob("*.json"))             # a certificate says so
    assert main(["certify", f"{os.path.dirname(__file__)}/missing_dependency.py:kernel", "--family",
                 "gated_delta_rule"]) == 3
    assert "needs the module 'mamba_ssm_cuda_ext'" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="the kernel runs where CUDA is")
def test_a_kernel_raising_inside_torch_cuda_on_the_cpu_could_not_run_here():
    cert = certify(f"{os.path.dirname(__file__)}/scope_kernels.py:enters_the_inputs_cuda_device", "gated_delta_rule",
                   profile="dev", database=None)
    assert cert.could_not_run and "needs a CUDA device" in cert.could_not_run and not cert.failed


@pytest.mark.parametrize("kernel, refused", [("refuses_fp32", "fp32"), ("refuses_bf16", "bf16")])
def test_a_refused_dtype_is_unsupported_with_the_kernels_message_and_the_other_certified(kernel, refused):
    cert = certify(f"{os.path.dirname(__file__)}/scope_kernels.py:{kernel}", "gated_delta_rule", profile="dev",
                   dtypes=["fp32", "bf16"], properties=["forward", "final_state"], max_examples=3, database=None)
    assert cert.certified and set(cert.scope["dtypes"]) == {refused}
    for v in cert.verdicts:
        assert v.status == ("unsupported" if v.dtype == refused else "pass"), (v.property, v.dtype, v.reason)
        if v.dtype == refused:
            assert v.reason.startswith(f"{refused} unsupported (") and "float" in v.reason
    assert cert.summary.endswith(f", {refused})") and f"CERTIFIED ({({'fp32', 'bf16'} - {refused}).pop()};" in cert.summary


def test_a_kernel_refusing_every_dtype_is_not_certified():
    cert = certify(f"{os.path.dirname(__file__)}/../harness/hostile.py:raises_always", "linear_attention",
                   profile="dev", dtypes=["fp32", "bf16"], properties=["forward"], max_examples=2, database=None)
    assert not cert.certified and cert.scope["dtypes"] == {}
    assert [v.status for v in cert.verdicts] == ["fail", "fail"]


def test_a_kernel_refusing_to_return_its_state_has_only_that_outside_its_scope():
    """The probes ask for the final state only once its own probe accepted it: a kernel that raises when
    asked is not taken for one that refuses every call (every length, every dtype)."""
    cert = certify(f"{os.path.dirname(__file__)}/scope_kernels.py:refuses_to_return_its_state", "gated_delta_rule",
                   profile="dev", properties=["scope", "forward", "final_state"], max_examples=3, database=None)
    assert cert.certified, [v.reason for v in cert.verdicts]
    assert cert.scope["unsupported"]["final_state"] == "AssertionError: return_last_states is not supported"
    assert set(cert.scope["unsupported"]) == {"final_state", "varlen", "chunk_size"}, cert.scope
    assert {v.property: v.status for v in cert.verdicts}["final_state"] == "unsupported"


def test_state_parts_by_keyword_returned_flat_and_a_value_width_tied_to_the_key_width():
    """fla-core's mesa_net spelling — h_kk_init / h_kv_init, (o, h_kk, h_kv) flat — needs no flag, and a kernel
    that refuses V ≠ K is certified on cases with V = K, with "V ≠ K" outside its scope."""
    cert = certify(f"{os.path.dirname(__file__)}/scope_kernels.py:mesa_net_flat", "mesa_net", profile="dev",
                   properties=["scope", "forward", "final_state", "state_passing"], max_examples=3, database=None)
    assert cert.certified, [v.reason for v in cert.verdicts]
    assert set(cert.scope["unsupported"]) == {"distinct_value_dim", "varlen", "chunk_size"}, cert.scope
    assert {"initial_state", "final_state"} <= set(cert.scope["supported"])
    assert "V ≠ K" in cert.summary
    assert all(v.status == "pass" for v in cert.verdicts), [(v.property, v.status) for v in cert.verdicts]
