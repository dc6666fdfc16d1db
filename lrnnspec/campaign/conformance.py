"""``lrnnspec conformance`` as a campaign with defaults: one job per implementation (its dtypes
together, so that one certificate per implementation keeps its name: ``<family>-<target>.json``),
on the executor the options name, resumable, with the shared example database
(``<certificates>/.lrnnspec-examples`` unless ``--database`` says otherwise)."""

from __future__ import annotations

import os
from pathlib import Path

from .jobs import Job


def jobs_for(impls, dtypes: list[str], args, database: str | None) -> list[Job]:
    """One job per implementation, within its budget (fewer examples, shorter sequences, fewer dtypes
    where it runs slowly here)."""
    from lrnnspec.harness.certificate import certificate_stem

    from .definition import label_for

    jobs = []
    for i in impls:
        budget = i.budget or {}
        ds = tuple(d for d in dtypes if d in budget.get("dtypes", dtypes))
        examples = args.examples
        if budget.get("examples") is not None:
            examples = min(examples or budget["examples"], budget["examples"])
        jobs.append(Job(target=i.target, family=i.family, dtypes=ds, device=args.device, seed=args.seed,
                        profile=args.profile, examples=examples, timeout=args.timeout, convention=i.convention,
                        contracts=dict(i.contracts), env=dict(i.env), max_len=budget.get("max_len"),
                        database=database, stem=certificate_stem(i.family, i.target),
                        label=label_for(i.family, i.target, ds, args.device, args.seed)))
    return jobs


def executor_for(args):
    from .executors import make_executor

    if args.executor == "ray" and args.address is None:
        # a local Ray instance: --jobs CPUs when given, else this machine's
        return make_executor("ray", jobs=args.jobs if args.jobs > 1 else (os.cpu_count() or 1))
    return make_executor(args.executor, jobs=args.jobs, address=args.address)


def run(impls, dtypes: list[str], args, certs_dir: Path) -> tuple[list, float, object]:
    """Certify ``impls``; (rows of (implementation, certificate or why it could not be loaded), seconds,
    the outcome)."""
    from . import database, driver
    from .definition import check_devices

    executor = executor_for(args)
    db = database.resolve(getattr(args, "database", None), certs_dir / ".lrnnspec-examples")
    jobs = jobs_for(impls, dtypes, args, db)
    check_devices(jobs, local=args.executor == "local")
    outcome = driver.run(jobs, executor, certs_dir, resume=getattr(args, "resume", False),
                         live=False if getattr(args, "json", False) else None)
    rows = []
    for impl, job in zip(impls, jobs):
        r = outcome.results[job.stem]
        rows.append((impl, r.certificate if r.status == "certificate" else _why(r)))
    return rows, outcome.seconds, outcome


def _why(result) -> str:
    if result.status == "could_not_load":
        return result.message
    if result.status == "lost":
        return f"could not run it: {result.message}"
    return f"harness error: {result.message}"
