"""Executors: where jobs run. One interface — :meth:`Executor.start`, :meth:`Executor.run` (yields
each :class:`~.jobs.JobResult` as it completes, in completion order), :meth:`Executor.close` — and
two engines:

``local``  the default: ``--jobs 1`` certifies in the driver's own process, one job after another;
           ``--jobs N`` in a pool of N processes on this machine (spawned: a forked child cannot use
           CUDA once the parent touched it).
``ray``    a Ray cluster: ``address`` ``auto`` (the cluster this machine joined with ``ray start``),
           ``host:port`` or ``ray://host:10001`` (Ray Client); None starts a local Ray instance with
           ``cpus`` CPUs and stops it at the end. Each job is one Ray task asking for one CPU, and one
           GPU when its device is CUDA. A task whose worker process or node vanishes is retried
           (``max_retries``) by Ray; an exception is never retried (the job returns the harness's
           errors as its result, so one only comes from lost infrastructure). A kernel that kills
           its own process cannot reach the task: it runs in a process under it (:mod:`.jobs`).

Another engine is one class with these three methods: the jobs and :func:`~.jobs.run_job` know
nothing of the executor.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
from typing import Iterable, Iterator
from urllib.parse import urlparse

from lrnnspec.errors import CannotRun, UsageError

from .jobs import Job, JobResult, run_job

EXECUTORS = ("local", "ray")
RAY_MAX_RETRIES = 3


class Executor:
    name = "executor"
    slots = 1                      # jobs that can run at once (the display's "running")

    def start(self) -> None:
        """Reach the machines (raises :class:`~lrnnspec.errors.CannotRun` when they cannot be)."""

    def check(self, jobs: list[Job]) -> None:
        """After :meth:`start`, before anything is written: raise :class:`~lrnnspec.errors.CannotRun`
        when these jobs cannot run on the machines reached (a CUDA job and no GPU anywhere)."""

    def run(self, jobs: Iterable[Job]) -> Iterator[JobResult]:
        raise NotImplementedError

    def close(self) -> None:
        """Release what :meth:`start` took (also after an interruption)."""

    def describe(self) -> str:
        return self.name


class LocalExecutor(Executor):
    name = "local"

    def __init__(self, jobs: int = 1):
        self.slots = jobs
        self._pool = None

    def describe(self) -> str:
        return "the driver's own process" if self.slots == 1 else f"{self.slots} processes on this machine"

    def run(self, jobs: Iterable[Job]) -> Iterator[JobResult]:
        jobs = list(jobs)
        if self.slots == 1:
            for job in jobs:
                yield run_job(job)
            return
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        self._pool = ProcessPoolExecutor(min(self.slots, max(len(jobs), 1)),
                                         mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_ignore_interrupts)
        futures = {self._pool.submit(run_job, job): job for job in jobs}
        for future in as_completed(futures):
            job = futures[future]
            try:
                yield future.result()
            except Exception as exc:  # noqa: BLE001 - a pool worker that died (BrokenProcessPool) or could not pickle
                yield JobResult(job, "lost", message=f"its worker process failed: {type(exc).__name__}: {exc}")

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        processes = list(getattr(pool, "_processes", {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for p in processes:                   # an interrupted run: the jobs still running stop now
            if p.is_alive():
                p.terminate()
        for p in processes:
            p.join(timeout=10)


def _ignore_interrupts() -> None:
    """Pool workers leave Ctrl-C to the driver, which stops them (a job half done writes nothing)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def check_address(address: str) -> str:
    """``auto``, ``host:port`` or ``ray://host:port``, checked for its form (exit 2 otherwise)."""
    if address == "auto":
        return address
    url = urlparse(address if "://" in address else f"tcp://{address}")
    if url.scheme not in ("tcp", "ray") or not url.hostname or url.port is None:
        raise UsageError("--address", "must be auto, HOST:PORT (a Ray head's GCS) or ray://HOST:PORT (Ray Client)",
                         address)
    return address


def _reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast, naming the address, when nothing listens there (Ray itself waits a long time)."""
    if address == "auto":
        return
    url = urlparse(address if "://" in address else f"tcp://{address}")
    try:
        with socket.create_connection((url.hostname, url.port), timeout=timeout):
            pass
    except OSError as exc:
        raise CannotRun("--address", f"no Ray cluster answers at {url.hostname}:{url.port} ({exc}); start one with "
                                     f"`ray start --head` there, or leave --address out for a local Ray instance",
                        address) from None


def _token_auth() -> None:
    """Ray ≥ 2.5x starts clusters with token authentication and saves the token in ~/.ray/auth_token,
    but a driver joining an existing cluster sends it only when RAY_AUTH_MODE=token: set that when a
    token is at hand and the mode is not chosen (RAY_AUTH_MODE=disabled still opts out)."""
    from pathlib import Path

    if "RAY_AUTH_MODE" in os.environ:
        return
    if os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH") or \
            (Path.home() / ".ray" / "auth_token").is_file():
        os.environ["RAY_AUTH_MODE"] = "token"


class RayExecutor(Executor):
    name = "ray"

    def __init__(self, address: str | None = None, cpus: int | None = None, max_retries: int = RAY_MAX_RETRIES):
        self.address = None if address is None else check_address(address)
        self.cpus = cpus
        self.max_retries = max_retries
        self.owned = False
        self.slots = cpus or 1

    def describe(self) -> str:
        where = f"the Ray cluster at {self.address}" if self.address else f"a local Ray instance ({self.slots} CPUs)"
        return where

    def start(self) -> None:
        if self.address is not None:
            _token_auth()              # before ray is imported: it reads the mode once
        try:
            import ray
        except ImportError:
            raise CannotRun("--executor", "ray needs the 'ray' package, which is not installed here: "
                                          "pip install 'lrnnspec[cluster]'", "ray") from None
        import logging

        # Ray prints its own messages (a worker that died, …) on sys.stdout: send them to stderr while it
        # runs, so that stdout stays the command's result (--json stays clean)
        self._stdout, sys.stdout = sys.stdout, sys.stderr
        options = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING,
                   "configure_logging": True}
        if self.address is None:
            ray.init(num_cpus=self.cpus, **options)
            self.owned = True
        else:
            _reachable(self.address)
            try:
                ray.init(address=self.address, **({} if self.address.startswith("ray://") else options))
            except (ConnectionError, RuntimeError, TimeoutError) as exc:
                raise CannotRun("--address", f"could not join the Ray cluster at {self.address}: "
                                             f"{' '.join(str(exc).split())[:300]}", self.address) from None
        resources = ray.cluster_resources()
        self.slots = max(int(resources.get("CPU", 1)), 1)

    def check(self, jobs: list[Job]) -> None:
        import ray

        resources = ray.cluster_resources()
        cuda = [j for j in jobs if j.gpus]
        if cuda and not resources.get("GPU", 0):
            have = ", ".join(f"{k} {v:g}" for k, v in sorted(resources.items()) if k in ("CPU", "GPU"))
            raise CannotRun("devices", f"{len(cuda)} jobs run on {cuda[0].device}, and no node of the Ray cluster "
                                       f"has a GPU (it has {have})", cuda[0].device)

    def run(self, jobs: Iterable[Job]) -> Iterator[JobResult]:
        import ray
        from ray.exceptions import RayError, RayTaskError

        task = ray.remote(certification_job)
        # the variables Ray sets in its workers (OMP_NUM_THREADS=1) restored to the driver's, so that the
        # kernel runs in the environment it gets from the local executor (and the certificates agree)
        variables = {k: os.environ.get(k) for k in RAY_SETS}
        pending = {}
        for job in jobs:
            ref = task.options(num_cpus=job.cpus, num_gpus=job.gpus, max_retries=self.max_retries,
                               retry_exceptions=False, name="certification_job").remote(job, variables, os.getcwd())
            pending[ref] = job
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                job = pending.pop(ref)
                try:
                    yield ray.get(ref)
                except RayTaskError as exc:      # run_job raised: lrnnspec's own error (not retried)
                    yield JobResult(job, "error", message=f"{type(exc.cause).__name__}: {exc.cause}"[:2000],
                                    traceback=str(exc)[-20000:])
                except RayError as exc:          # the worker or node was lost more often than retried
                    yield JobResult(job, "lost", message=f"its Ray worker was lost {self.max_retries + 1} times: "
                                                         f"{type(exc).__name__}: {' '.join(str(exc).split())[:500]}")

    def close(self) -> None:
        try:
            import ray
        except ImportError:
            return
        try:
            if ray.is_initialized():
                ray.shutdown()
        finally:
            self.owned = False
            if getattr(self, "_stdout", None) is not None:
                sys.stdout, self._stdout = self._stdout, None


RAY_SETS = ("OMP_NUM_THREADS",)


def certification_job(job: Job, variables: dict, cwd: str) -> JobResult:
    """A Ray task: :func:`~.jobs.run_job` with ``variables`` as the driver had them (None: unset), in
    the driver's working directory where this node has it (relative paths mean what they meant there)."""
    if os.path.isdir(cwd):
        os.chdir(cwd)
    for key, value in variables.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    return run_job(job)


def make_executor(name: str, *, jobs: int | None = None, address: str | None = None) -> Executor:
    """The executor ``--executor NAME`` names (exit 2 for an unknown one, or an address without ray)."""
    if name not in EXECUTORS:
        raise UsageError("--executor", f"must be one of {', '.join(EXECUTORS)}", name)
    if name == "local":
        if address is not None:
            raise UsageError("--address", "applies to --executor ray", address)
        return LocalExecutor(jobs or 1)
    return RayExecutor(address, cpus=None if address else (jobs or os.cpu_count() or 1))


__all__ = ["EXECUTORS", "Executor", "LocalExecutor", "RayExecutor", "make_executor", "check_address"]
