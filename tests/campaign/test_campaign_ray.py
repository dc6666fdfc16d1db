"""Campaigns on a Ray cluster (a local instance with 2 CPUs stands for it), as a user runs them:
the verdicts and certificates equal the local executor's; a Ray worker killed mid-job is retried
and every certificate is written once; a kernel that segfaults is that kernel's named failure, not
a lost worker to retry; conformance runs through the same executor."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from .conftest import HEADS, KERNELS, lrnnspec, ray_workers_running, small_campaign, wait_for

WORKER_DIED = "A worker died or was killed while executing a task"


def _normalized(value):
    """A certificate without what differs between two runs of the same jobs: times (and the
    isolation cost, which is times) and the run's id."""
    if isinstance(value, dict):
        return {k: _normalized(v) for k, v in value.items() if k not in ("seconds", "isolation", "run")}
    if isinstance(value, list):
        return [_normalized(v) for v in value]
    return value


def _certificates(out):
    d = out / "certificates"
    return {p.name: _normalized(json.loads(p.read_text())) for p in sorted(d.glob("*.json"))}


def _verdicts(out):
    data = json.loads((out / "campaign.json").read_text())
    return {(j["target"], tuple(j["dtypes"])): (j["verdict"], j["failing"]) for j in data["jobs"]}


def test_ray_gives_the_local_executors_verdicts_and_certificates(tmp_path, ray_cluster):
    campaign = small_campaign(tmp_path / "small.toml")
    local = lrnnspec("campaign", "run", campaign, "--executor", "local", "--jobs", "2", "--out", tmp_path / "local")
    ray = lrnnspec("campaign", "run", campaign, "--executor", "ray", "--address", ray_cluster, "--out", tmp_path / "ray")
    assert local.returncode == 1, local.stderr[-3000:]           # the planted bug fails: exit 1
    assert ray.returncode == 1, ray.stderr[-3000:]
    verdicts = _verdicts(tmp_path / "ray")
    assert len(verdicts) == 8 and verdicts == _verdicts(tmp_path / "local")
    planted = [v for (target, _), v in verdicts.items() if target.endswith(":output_scaled")]
    assert ("FAILED", ["forward [fp32]"]) in planted
    assert sum(v[0] == "certified" for v in verdicts.values()) == 7
    ours, theirs = _certificates(tmp_path / "local"), _certificates(tmp_path / "ray")
    assert len(ours) == 8 and list(ours) == list(theirs)
    for name in ours:
        assert ours[name] == theirs[name], name
    # the driver alone wrote them: the ray run's progress log holds one line per verdict of this run
    lines = (tmp_path / "ray" / "certificates" / "progress.jsonl").read_text().splitlines()
    assert len(lines) == sum(len(c["verdicts"]) for c in theirs.values())
    assert "on the Ray cluster at" in ray.stderr and "[8/8]" in ray.stderr


def test_a_ray_worker_killed_mid_job_is_retried_and_every_certificate_written_once(tmp_path, ray_cluster):
    campaign = small_campaign(tmp_path / "small.toml", dtypes=("fp32",))
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "lrnnspec", "campaign", "run", str(campaign), "--executor", "ray",
                             "--address", ray_cluster, "--out", str(out), "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        busy = wait_for(ray_workers_running, timeout=120, step=0.1)
        assert busy, "no Ray worker ever ran a certification job"
        time.sleep(0.5)                                     # mid-job: the first job of a worker takes seconds
        victim = busy[0]
        os.kill(victim, signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=400)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, stderr[-3000:] + stdout[-3000:]     # the planted bug, nothing lost
    summary = json.loads(stdout)
    assert summary["counts"]["jobs"] == 4 and summary["counts"]["other"] == 0
    assert [j["verdict"] for j in summary["jobs"]].count("lost") == 0
    assert victim not in [j["pid"] for j in summary["jobs"]]        # the killed job finished elsewhere
    names = sorted(p.name for p in (out / "certificates").glob("*.json"))
    assert len(names) == 4 == len(set(names))
    assert not list((out / "certificates").glob(".*.tmp"))


def test_a_segfaulting_kernel_is_its_failure_and_not_retried(tmp_path, ray_cluster):
    campaign = tmp_path / "segv.toml"
    campaign.write_text(f"""[campaign]
profile = "dev"
examples = 2
max_len = 16
properties = ["forward", "final_state"]

[[targets]]
target = "{KERNELS}:segfaults"
family = "linear_attention"

[[targets]]
target = "{KERNELS}:correct"
family = "linear_attention"
""")
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "lrnnspec", "campaign", "run", str(campaign), "--executor", "ray",
                             "--address", ray_cluster, "--out", str(tmp_path / "o"), "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: set[int] = set()                  # every Ray worker process seen running a job
    try:
        while proc.poll() is None and time.monotonic() - start < 300:
            seen.update(ray_workers_running(root=HEADS[ray_cluster]))
            time.sleep(0.05)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    run = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    summary = json.loads(run.stdout)
    job = next(j for j in summary["jobs"] if j["target"].endswith(":segfaults"))
    assert job["verdict"] == "FAILED" and job["failing"] == ["forward [fp32]", "final_state [fp32]"]
    cert = json.loads((tmp_path / "o" / "certificates" / f"{job['stem']}.json").read_text())
    assert all("SIGSEGV" in v["reason"] for v in cert["verdicts"] if v["status"] == "fail")
    # the kernel died in its own process under the job; no Ray worker died, so Ray retried nothing: every
    # worker seen running a job is one that sent a result back (a retry leaves a dead worker behind)
    assert seen and seen <= {j["pid"] for j in summary["jobs"]}, (seen, summary["jobs"])
    assert WORKER_DIED not in run.stderr
    assert summary["counts"] == {**summary["counts"], "jobs": 2, "certified": 1, "failed": 1, "other": 0}
    assert time.monotonic() - start < 300


def test_conformance_runs_on_ray(tmp_path, ray_cluster):
    run = lrnnspec("conformance", "--family", "retention", "--profile", "dev", "--examples", "1", "--executor", "ray",
                   "--address", ray_cluster, "--out", tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert len(list((tmp_path / "certificates").glob("retention-*.json"))) == 3
    assert "`chunk_retention`" in (tmp_path / "conformance.md").read_text()


def test_cuda_jobs_on_a_cluster_without_a_gpu_cannot_run_and_write_nothing(tmp_path, ray_cluster):
    import pytest
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the local Ray instance offers it")
    campaign = small_campaign(tmp_path / "gpu.toml", dtypes=("fp32",))
    campaign.write_text(campaign.read_text().replace('max_len = 16', 'max_len = 16\ndevices = ["cuda"]'))
    run = lrnnspec("campaign", "run", campaign, "--executor", "ray", "--address", ray_cluster, "--out", tmp_path / "o")
    assert run.returncode == 3, run.stderr[-3000:]
    assert "devices: 4 jobs run on cuda, and no node of the Ray cluster has a GPU" in run.stderr
    assert not (tmp_path / "o").exists()
