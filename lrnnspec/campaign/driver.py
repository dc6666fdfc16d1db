"""The driver: runs a campaign's jobs on an executor and alone writes what they produced.

Per finished job, in the order they finish: ``<stem>.json`` and ``<stem>.md`` (the certificate),
``<stem>.log`` (the kernel's output, when there was any), the verdicts appended to
``progress.jsonl`` and the job recorded in ``campaign.state`` (:mod:`.resume`). Every file is
written whole, through a temporary file and one rename (:func:`lrnnspec.atomic.write_text`), by this
one process: an interrupted campaign leaves finished jobs complete and unfinished ones absent.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lrnnspec.atomic import write_text

from . import resume as resuming
from .executors import Executor
from .jobs import Job, JobResult
from .progress import Progress


@dataclass
class Outcome:
    results: dict[str, JobResult] = field(default_factory=dict)     # stem → result (skipped ones included)
    skipped: list[str] = field(default_factory=list)                # stems skipped by --resume
    ran: list[str] = field(default_factory=list)                    # stems run now
    seconds: float = 0.0
    write_seconds: float = 0.0                                      # the driver's writing, over every job

    def ordered(self, jobs: list[Job]) -> list[JobResult]:
        return [self.results[j.stem] for j in jobs if j.stem in self.results]

    def exit_code(self) -> int:
        """0 every job certified, 1 a property failed somewhere, 3 otherwise (could not run, harness errors)."""
        results = list(self.results.values())
        if results and all(r.certified for r in results):
            return 0
        return 1 if any(r.failed for r in results) else 3


def prepare(certs_dir: Path, jobs: list[Job], *, resume: bool, say) -> tuple[list[Job], Outcome]:
    """The jobs to run now, and the outcome holding the ones ``--resume`` skips (nothing is written)."""
    outcome = Outcome()
    if not resume:
        return list(jobs), outcome
    state = resuming.read_state(certs_dir)
    environments: dict = {}
    todo = []
    for job in jobs:
        ok, why = resuming.done(job, certs_dir, state, environments)
        if ok:
            cert = resuming.certificate_from_json(json.loads((certs_dir / f"{job.stem}.json").read_text()))
            outcome.results[job.stem] = JobResult(job, "certificate", cert, seconds=0.0)
            outcome.skipped.append(job.stem)
        else:
            todo.append(job)
            if why != "no finished run recorded":
                say(f"rerunning {job.label or job.stem}: {why}")
    if outcome.skipped:
        say(f"--resume: skipping {len(outcome.skipped)} of {len(jobs)} jobs (certificate present for the same kernel "
            f"sha256, spec version, settings and environment); running {len(todo)}")
    return todo, outcome


def run(jobs: list[Job], executor: Executor, certs_dir: Path, *, resume: bool = False, live: bool | None = None,
        stream=None, started: bool = False) -> Outcome:
    """Run ``jobs`` (their stems unique) on ``executor`` and write their certificates into ``certs_dir``;
    ``resume``: skip the finished ones. ``started``: the executor was already started by the caller.
    Raises ``KeyboardInterrupt`` on Ctrl-C after stopping the executor (what finished is written)."""
    import sys

    stream = stream or sys.stderr
    say = lambda line: print(line, file=stream, flush=True)    # noqa: E731
    todo, outcome = prepare(certs_dir, jobs, resume=resume, say=say)
    try:
        if todo and not started:              # nothing to run (all resumed): no cluster to reach
            executor.start()
        if todo:
            executor.check(todo)
        certs_dir.mkdir(parents=True, exist_ok=True)
        state = resuming.read_state(certs_dir) if resume else {}
        progress_log = certs_dir / "progress.jsonl"
        lines = progress_log.read_text().splitlines(keepends=True) if resume and progress_log.exists() else []
        if not resume:
            # the progress log is this run's: an earlier run's lines would read as this one's
            progress_log.unlink(missing_ok=True)
            resuming.write_state(certs_dir, state)
        start = time.perf_counter()
        if todo:
            say(f"running {len(todo)} jobs on {executor.describe()}")
        with Progress(len(todo), executor.slots, stream=stream, live=live) as progress:
            for result in (executor.run(todo) if todo else ()):
                stem = result.job.stem
                began = time.perf_counter()
                lines += _write(certs_dir, result, state)
                if result.status == "certificate":
                    write_text(progress_log, "".join(lines))
                resuming.write_state(certs_dir, state)
                outcome.write_seconds += time.perf_counter() - began
                outcome.results[stem] = result
                outcome.ran.append(stem)
                progress.job_done(result)
        outcome.seconds = time.perf_counter() - start
    finally:
        executor.close()
    return outcome


def _write(certs_dir: Path, result: JobResult, state: dict) -> list[str]:
    """Write one job's files (see the module docstring); the progress lines it adds."""
    job = result.job
    state.pop(job.stem, None)
    if result.status != "certificate":
        return []
    cert = result.certificate
    log = certs_dir / f"{job.stem}.log"
    if result.log:
        write_text(log, result.log)
        cert.log = {**(cert.log or {}), "file": log.name}
    else:
        log.unlink(missing_ok=True)
        cert.log = {**(cert.log or {}), "file": None}
    write_text(certs_dir / f"{job.stem}.json", json.dumps(cert.to_json(), indent=1))
    write_text(certs_dir / f"{job.stem}.md", cert.to_markdown())
    state[job.stem] = {"settings": resuming.settings(job), "seconds": result.seconds, "host": result.host}
    run = {"run": cert.run} if getattr(cert, "run", None) else {}
    return [json.dumps({**run, "target": job.target, **asdict(v)}) + "\n" for v in cert.verdicts]
