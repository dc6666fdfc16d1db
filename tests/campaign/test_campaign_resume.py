"""``--resume``: a campaign interrupted (Ctrl-C to the driver) restarts where it stopped — only the
jobs without a finished certificate rerun, and the run counts them; a kernel whose source changed
reruns; no half-written file is ever left."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys

from .conftest import KERNELS, lrnnspec, small_campaign, wait_for


def _finished(certs) -> list[str]:
    try:
        return list(json.loads((certs / "campaign.state").read_text())["jobs"])
    except (OSError, ValueError, KeyError):
        return []


def test_an_interrupted_campaign_resumes_with_only_the_unfinished_jobs(tmp_path):
    kernels = tmp_path / "kernels.py"
    shutil.copy(KERNELS, kernels)
    campaign = small_campaign(tmp_path / "small.toml", kernels=kernels)
    out = tmp_path / "out"
    certs = out / "certificates"
    driver = subprocess.Popen([sys.executable, "-m", "lrnnspec", "campaign", "run", str(campaign), "--jobs", "1",
                               "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: len(_finished(certs)) >= 2, timeout=300), driver.stderr.read() if driver.poll() else ""
        driver.send_signal(signal.SIGINT)                         # Ctrl-C
        _, stderr = driver.communicate(timeout=120)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 130, stderr[-3000:]
    done = _finished(certs)
    assert 2 <= len(done) < 8, done
    # what finished is whole, what did not is absent: no temporary file, every certificate reads
    assert not list(certs.glob(".*.tmp"))
    on_disk = {p.stem for p in certs.glob("*.json")}
    assert on_disk == set(done)
    for stem in done:
        json.loads((certs / f"{stem}.json").read_text())

    again = lrnnspec("campaign", "run", campaign, "--jobs", "2", "--resume", "--out", out, "--json")
    assert again.returncode == 1, again.stderr[-3000:]            # the planted bug
    summary = json.loads(again.stdout)
    assert summary["counts"]["skipped"] == len(done) and summary["counts"]["ran"] == 8 - len(done)
    assert f"--resume: skipping {len(done)} of 8 jobs" in again.stderr
    assert sorted(j["stem"] for j in summary["jobs"] if j["skipped"]) == sorted(done)
    assert summary["counts"]["jobs"] == 8 and summary["counts"]["certified"] == 7

    # the planted kernel's source changes: its two jobs rerun, nothing else
    kernels.write_text(kernels.read_text() + "\n# changed\n")
    third = lrnnspec("campaign", "run", campaign, "--jobs", "2", "--resume", "--out", out, "--json")
    summary = json.loads(third.stdout)
    assert summary["counts"]["ran"] == 2 and summary["counts"]["skipped"] == 6, third.stderr[-3000:]
    assert third.stderr.count("the kernel's source changed (sha256 differs)") == 2
    assert {j["target"] for j in summary["jobs"] if not j["skipped"]} == {f"{kernels}:output_scaled"}
