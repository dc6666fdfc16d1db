"""The progress display: on a terminal a live status line (done / running / failed, elapsed, ETA, the
failures by name) redrawn in place; elsewhere one plain line per job and no control characters."""

from __future__ import annotations

import io

from lrnnspec.campaign.jobs import Job, JobResult
from lrnnspec.harness.certificate import Certificate
from lrnnspec.harness.verdicts import Verdict


def _result(name: str, status: str) -> JobResult:
    job = Job(target=f"pkg.ops:{name}", family="retention", dtypes=("fp32",), stem=name,
              label=f"retention {name} [fp32] cpu seed 0")
    cert = Certificate({"target": job.target, "sha256": "0"}, "retention", "fla", ["fp32"], "cpu", {}, "0.1",
                       {"fp32": "fp32"}, {}, "ci", 0, 2, verdicts=[Verdict("forward", "fp32", status)])
    return JobResult(job, "certificate", cert, seconds=1.5, host="node-1", pid=42)


def test_plain_progress_is_one_line_per_job_without_control_characters():
    from lrnnspec.campaign.progress import Progress

    stream = io.StringIO()
    with Progress(3, 2, stream=stream, live=False) as p:
        p.job_done(_result("good", "pass"))
        p.job_done(_result("bad", "fail"))
        p.job_done(JobResult(_result("gone", "pass").job, "could_not_load",
                             message="could not load it here: the module 'x' is not installed"))
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3 and "\033" not in stream.getvalue() and "\r" not in stream.getvalue()
    assert lines[0].startswith("[1/3] certified") and "on node-1 pid 42" in lines[0]
    assert lines[1].startswith("[2/3] FAILED") and lines[1].endswith(": forward [fp32]")
    assert lines[2].startswith("[3/3] could not run here") and "'x' is not installed" in lines[2]


def test_live_progress_redraws_a_status_line_and_names_the_failures():
    from lrnnspec.campaign.progress import Progress

    stream = io.StringIO()
    with Progress(4, 2, stream=stream, live=True) as p:
        p.job_done(_result("good", "pass"))
        assert p.status().startswith("jobs 1/4 done · 2 running · 0 failed")
        p.job_done(_result("bad", "fail"))
        status = p.status()
    assert "jobs 2/4 done · 2 running · 1 failed" in status and "ETA" in status and "elapsed" in status
    assert "failing: retention bad [fp32] cpu" in status
    text = stream.getvalue()
    assert "\r\033[K" in text                                   # redrawn in place
    assert "[2/4] FAILED" in text                               # a failure gets a line of its own
    assert "[1/4] certified" not in text                        # a pass only moves the status line on
