"""The harness against hostile kernels (tests/harness/hostile.py): each ends in the failing property
that names what it did, within its time bound, with the harness alive and a complete certificate
written — or, for a benign change of global state, certified. A few run as a user runs them: the
``lrnnspec certify`` command in a fresh process, whose exit code, stdout (``--json``) and lingering
processes are checked."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lrnnspec.harness.certificate import certify

from . import hostile

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("h", hostile.CORPUS, ids=lambda h: h.name)
def test_hostile_kernel_ends_in_its_named_verdict(h, tmp_path):
    start = time.monotonic()
    cert = certify(h.target, hostile.FAMILY, properties=list(h.properties), profile="dev", timeout=h.timeout,
                   env=h.env, out=tmp_path)
    seconds = time.monotonic() - start
    verdicts = {v.property: v for v in cert.verdicts}
    assert list(verdicts) == list(h.properties), "every property has a verdict: the run went on"
    for prop, v in verdicts.items():
        assert v.status != "error", f"{h.name}: the harness failed on {prop}: {v.reason}\n{v.traceback}"
        if prop in h.expect:
            assert v.status == "fail", f"{h.name} ({h.behaviour}): {prop} is {v.status}: {v.reason}"
            assert re.search(h.expect[prop], v.reason), f"{h.name}: {prop} says {v.reason!r}"
            assert v.counterexample and v.counterexample["case"]
        elif not h.expect:
            assert v.status == "pass", f"{h.name} ({h.behaviour}) is benign, yet {prop} is {v.status}: {v.reason}"
    assert cert.certified == (not h.expect)
    assert seconds < h.seconds, f"{h.name} took {seconds:.0f} s (bound {h.seconds:.0f} s)"
    written = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert [v["property"] for v in written["verdicts"]] == list(h.properties)
    assert written["environment"]["torch"] and written["kernel"]["sha256"] != "unavailable"
    assert (tmp_path / "progress.jsonl").read_text().count("\n") == len(h.properties)


def _cli(*args, timeout=240, **env):
    """``lrnnspec`` as a user runs it: the installed package, from a directory outside the checkout (whose
    ``lrnnspec/`` folder alone is not the installed package)."""
    return subprocess.run([sys.executable, "-m", "lrnnspec", *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **env}, cwd=Path(args[args.index("--out") + 1]))


def test_a_flooding_kernel_leaves_json_output_intact_and_its_log_capped(tmp_path):
    run = _cli("certify", f"{hostile.FILE}:floods_stdout_and_stderr", "--family", hostile.FAMILY, "--profile", "dev",
               "--properties", "forward", "--json", "--out", str(tmp_path))
    assert run.returncode == 0, run.stderr[-2000:]
    cert = json.loads(run.stdout)                             # stdout is the certificate and nothing else
    assert cert["certified"] and cert["log"]["dropped"] > 0
    (log,) = tmp_path.glob("*.log")
    assert 1 << 20 <= log.stat().st_size < (1 << 20) + 200 and "more bytes of output dropped" in log.read_text()[-200:]


def test_a_kernel_that_leaves_a_thread_running_does_not_keep_the_harness_alive(tmp_path):
    start = time.monotonic()
    run = _cli("certify", f"{hostile.FILE}:leaves_a_thread_running", "--family", hostile.FAMILY, "--profile", "dev",
               "--properties", "forward", "--out", str(tmp_path), timeout=120)
    assert run.returncode == 0 and "CERTIFIED" in run.stdout
    assert time.monotonic() - start < 100
    leftover = subprocess.run(["pgrep", "-f", "lrnnspec.harness.worker"], capture_output=True, text=True).stdout
    assert str(tmp_path) not in leftover


def test_a_segfault_is_a_failing_property_and_exit_1_not_a_crash(tmp_path):
    run = _cli("certify", f"{hostile.FILE}:segfaults", "--family", hostile.FAMILY, "--profile", "dev",
               "--properties", "forward,contract", "--out", str(tmp_path))
    assert run.returncode == 1, run.stderr[-2000:]
    assert "NOT CERTIFIED" in run.stdout and "SIGSEGV" in run.stdout
    cert = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert [v["status"] for v in cert["verdicts"]] == ["fail", "fail"]


def test_os_exit_is_not_a_certificate(tmp_path):
    run = _cli("certify", f"{hostile.FILE}:calls_os_exit", "--family", hostile.FAMILY, "--profile", "dev",
               "--properties", "forward", "--out", str(tmp_path))
    assert run.returncode == 1 and "exited with code 0" in run.stdout
    assert next(tmp_path.glob("*.json"))


def test_the_corpus_covers_what_it_must():
    names = {h.name for h in hostile.CORPUS}
    assert len(hostile.CORPUS) >= 30 and len(names) == len(hostile.CORPUS)
    assert sum(not h.expect for h in hostile.CORPUS) >= 5, "benign global-state changes are certified"
    for h in hostile.CORPUS:
        assert callable(getattr(hostile, h.name)) and set(h.expect) <= set(h.properties)
