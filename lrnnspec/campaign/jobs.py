"""The unit of work: one certification job (a target × its dtypes × a device × a seed), and what
running it sends back to the driver.

A :class:`Job` is plain data (picklable, executor-independent); :func:`run_job` runs it wherever an
executor put it — the driver's process, a process of the local pool, a Ray worker on another node —
and returns a :class:`JobResult`. The job writes nothing the driver reads: it certifies into a
temporary folder of its own (the kernel's output log lands there), and sends back the certificate
and the log's text; the driver alone writes certificates, logs and reports. The one thing jobs
share is the example database (a directory with atomic per-key files, or Redis), which is what it
is for.

The kernel itself runs in a worker process of its own under the job (:mod:`lrnnspec.harness.process`):
a kernel that segfaults, hangs or exits kills that process, which is a failed property of that
kernel, recorded in the certificate — the job's own process survives it and is never retried for it.
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

LOG_LIMIT = 1 << 20          # bytes of the kernel's output sent back to the driver


@dataclass(frozen=True)
class Job:
    target: str
    family: str
    dtypes: tuple[str, ...]
    device: str = "cpu"
    seed: int = 0
    profile: str = "ci"
    examples: int | None = None
    properties: tuple[str, ...] | None = None
    require: tuple[str, ...] = ()
    timeout: float = 60.0
    convention: str | None = None
    contracts: dict = field(default_factory=dict, hash=False)
    env: dict = field(default_factory=dict, hash=False)
    max_len: int | None = None
    layout: str | None = None
    rename: dict | None = field(default=None, hash=False)
    database: str | None = None        # a directory or redis://host:port/N; None: no example database
    stem: str = ""                     # the certificate's file name, without .json / .md / .log
    label: str = ""                    # how progress names it: "retention chunk_retention [fp32] cpu"

    @property
    def key(self) -> tuple:
        """What makes two jobs the same job (a campaign lists each once)."""
        return (self.family, self.target, self.dtypes, self.device, self.seed)

    @property
    def cpus(self) -> int:
        return 1

    @property
    def gpus(self) -> float:
        return 1.0 if self.device.startswith("cuda") else 0.0


@dataclass
class JobResult:
    """What a job sends back. ``status``: ``certificate`` (``certificate`` holds it, whatever its
    verdicts), ``could_not_load`` (``message`` says why: a missing dependency, the kernel's process
    dying while it loads), ``error`` (lrnnspec itself failed or the job's description was refused;
    ``message`` and ``traceback``), ``lost`` (the executor lost the job's worker more often than it
    retries; set by the driver)."""

    job: Job
    status: str
    certificate: object | None = None
    message: str = ""
    traceback: str = ""
    log: str = ""
    seconds: float = 0.0
    host: str = ""
    pid: int = 0

    @property
    def failed(self) -> bool:
        return self.status == "certificate" and self.certificate.failed

    @property
    def certified(self) -> bool:
        return self.status == "certificate" and self.certificate.certified

    @property
    def verdict(self) -> str:
        """One word for the progress display."""
        if self.status != "certificate":
            return {"could_not_load": "could not run here", "error": "harness error", "lost": "lost"}[self.status]
        c = self.certificate
        return "certified" if c.certified else "FAILED" if c.failed else "could not run here" if c.could_not_run \
            else "harness error" if c.errored else "nothing certified"

    @property
    def failing(self) -> list[str]:
        """The failing properties, ``property [dtype]``."""
        if self.status != "certificate":
            return []
        return [f"{v.property} [{v.dtype}]" for v in self.certificate.verdicts if v.status in ("fail", "error")]


def run_job(job: Job) -> JobResult:
    """Certify ``job`` here (see the module docstring). Never raises for the kernel's behaviour nor
    for lrnnspec's own errors: both come back as the result."""
    from lrnnspec.harness.certificate import certificate_stem, certify
    from lrnnspec.harness.process import KernelDied, LoadError

    start = time.perf_counter()
    where = {"host": socket.gethostname(), "pid": os.getpid()}
    with tempfile.TemporaryDirectory(prefix="lrnnspec-job-") as scratch:
        log_file = Path(scratch) / f"{certificate_stem(job.family, job.target)}.log"
        try:
            cert = certify(job.target, job.family, convention=job.convention, dtypes=list(job.dtypes),
                           device=job.device, max_examples=job.examples, seed=job.seed, profile=job.profile,
                           properties=None if job.properties is None else list(job.properties),
                           timeout=job.timeout, out=scratch, contracts=dict(job.contracts) or None,
                           env=dict(job.env) or None, require=list(job.require), database=job.database,
                           layout=job.layout, rename=dict(job.rename) if job.rename else None, max_len=job.max_len)
            result = JobResult(job, "certificate", cert, **where)
        except (LoadError, KernelDied) as exc:
            missing = exc.missing_dependency(job.target) if isinstance(exc, LoadError) else None
            why = f"the module {missing!r} is not installed" if missing else str(exc)
            result = JobResult(job, "could_not_load", message=f"could not load it here: {why}", **where)
        except Exception as exc:  # noqa: BLE001 - lrnnspec's own failure: this job's result, not the campaign's end
            result = JobResult(job, "error", message=f"{type(exc).__name__}: {exc}",
                               traceback=traceback.format_exc()[-20000:], **where)
        try:
            with log_file.open("rb") as fh:
                result.log = fh.read(LOG_LIMIT).decode("utf-8", "replace")
        except OSError:
            pass
    result.seconds = time.perf_counter() - start
    return result
