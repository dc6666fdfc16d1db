"""``lrnnspec campaign run CAMPAIGN.toml``: run a declarative certification campaign (targets ×
dtypes × devices × seeds; :mod:`lrnnspec.campaign.definition`) here or on a Ray cluster, and write
one certificate per job into ``OUT/certificates/`` plus ``OUT/campaign.md`` and ``OUT/campaign.json``.

Exit 0 every job certified, 1 a property failed somewhere, 2 a bad option or campaign file (one line
naming the field; nothing is written), 3 could not run (no Ray cluster at the address, no Redis
server, a device missing, a kernel that cannot be loaded here, a harness error), 130 interrupted
(what finished is kept: rerun with ``--resume``).
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path


def add_execution_options(p, *, jobs_default: int | None = 1) -> None:
    """--executor, --address, --jobs, --resume, --database (shared with ``conformance``)."""
    p.add_argument("--executor", default="local",
                   help="where jobs run: local (this machine: --jobs processes; the default) or ray (a Ray cluster: "
                        "--address; without one a local Ray instance is started and stopped)")
    p.add_argument("--address", default=None,
                   help="the Ray cluster for --executor ray: auto (the cluster this machine joined with `ray start`), "
                        "HOST:PORT or ray://HOST:10001; default: start a local instance")
    p.add_argument("--resume", action="store_true", default=False,
                   help="skip the jobs whose certificate exists for the same kernel sha256, spec version, settings "
                        "and environment (an interrupted run goes on where it stopped)")
    p.add_argument("--database", default=None,
                   help="the example database every job shares: a directory (on a cluster: a shared file system), "
                        "redis://HOST:PORT/N, or none")


def check_execution(args) -> None:
    """The execution options checked for their form (raises :class:`~lrnnspec.errors.UsageError`, exit 2)."""
    from lrnnspec.campaign.executors import EXECUTORS, check_address
    from lrnnspec.errors import UsageError

    if args.executor not in EXECUTORS:
        raise UsageError("--executor", f"must be one of {', '.join(EXECUTORS)}", args.executor)
    if args.address is not None and args.executor != "ray":
        raise UsageError("--address", "applies to --executor ray", args.address)
    if args.address is not None:
        check_address(args.address)


def _run(args) -> int:
    from lrnnspec.campaign import database, definition, driver
    from lrnnspec.campaign.executors import make_executor
    from dataclasses import replace

    from lrnnspec.errors import UsageError

    if args.jobs is not None and args.jobs < 1:
        raise UsageError("--jobs", "must be a positive integer", args.jobs)
    check_execution(args)
    campaign = definition.load(args.campaign)
    executor = make_executor(args.executor, jobs=args.jobs, address=args.address)
    definition.check_devices(campaign.jobs, local=args.executor == "local")
    out = Path(args.out)
    certs_dir = out / "certificates"
    db = database.resolve(args.database if args.database is not None else campaign.database,
                          out / ".lrnnspec-examples", option="--database" if args.database else "campaign.database")
    jobs = [replace(j, database=db) for j in campaign.jobs]
    for note in campaign.notes:
        print(f"lrnnspec: note: {note}", file=sys.stderr)
    outcome = driver.run(jobs, executor, certs_dir, resume=args.resume, live=None if not args.json else False)
    results = outcome.ordered(jobs)
    summary = summarize(campaign, jobs, outcome, args, db)
    out.mkdir(parents=True, exist_ok=True)
    from lrnnspec.atomic import write_text

    write_text(out / "campaign.json", json.dumps(summary, indent=1))
    write_text(out / "campaign.md", render(summary))
    if args.json:
        print(json.dumps(summary, indent=1))
    else:
        counts = summary["counts"]
        print(f"{campaign.name}: {counts['certified']} of {len(results)} jobs certified, {counts['failed']} failed, "
              f"{counts['other']} could not run ({len(outcome.ran)} run now, {len(outcome.skipped)} skipped by "
              f"--resume) — wrote {out / 'campaign.md'} and {len(results)} certificates in {certs_dir}")
    return outcome.exit_code()


def summarize(campaign, jobs, outcome, args, db) -> dict:
    from lrnnspec import SPEC_VERSION, __version__

    rows = []
    for r in outcome.ordered(jobs):
        j = r.job
        rows.append({"stem": j.stem, "family": j.family, "target": j.target, "dtypes": list(j.dtypes),
                     "device": j.device, "seed": j.seed, "verdict": r.verdict, "failing": r.failing,
                     "message": r.message, "seconds": round(r.seconds, 3), "host": r.host, "pid": r.pid,
                     "skipped": j.stem in outcome.skipped,
                     "replayed": getattr(r.certificate, "replayed", 0) if r.certificate is not None else 0})
    times = [row["seconds"] for row in rows if not row["skipped"]]
    return {"campaign": campaign.name, "file": campaign.source, "lrnnspec": __version__, "spec_version": SPEC_VERSION,
            "profile": campaign.profile, "executor": args.executor, "address": args.address,
            "database": db, "seconds": round(outcome.seconds, 3),
            "driver_write_seconds": round(outcome.write_seconds, 3),
            "counts": {"jobs": len(rows), "certified": sum(r.certified for r in outcome.results.values()),
                       "failed": sum(r.failed for r in outcome.results.values()),
                       "other": sum(not r.certified and not r.failed for r in outcome.results.values()),
                       "ran": len(outcome.ran), "skipped": len(outcome.skipped)},
            "job_seconds": distribution(times), "jobs": rows}


def distribution(times: list[float]) -> dict:
    if not times:
        return {}
    ordered = sorted(times)

    def pct(p):
        return ordered[min(len(ordered) - 1, int(round(p * (len(ordered) - 1))))]
    return {"n": len(times), "sum": round(sum(times), 2), "min": round(ordered[0], 2),
            "median": round(statistics.median(ordered), 2), "p90": round(pct(0.9), 2), "max": round(ordered[-1], 2)}


def render(summary: dict) -> str:
    d = summary["job_seconds"]
    lines = [f"# Campaign `{summary['campaign']}`", "",
             f"`lrnnspec campaign run {summary['file']} --executor {summary['executor']}` (lrnnspec "
             f"{summary['lrnnspec']}, spec {summary['spec_version']}, profile `{summary['profile']}`; example database "
             f"`{summary['database']}`): {summary['counts']['certified']} of {summary['counts']['jobs']} jobs certified, "
             f"{summary['counts']['failed']} failed, {summary['counts']['other']} could not run; "
             f"{summary['counts']['ran']} run in {summary['seconds']:.0f} s, {summary['counts']['skipped']} skipped "
             f"by --resume.", ""]
    if d:
        lines += [f"Job time (s): min {d['min']}, median {d['median']}, p90 {d['p90']}, max {d['max']}, sum {d['sum']} "
                  f"over {d['n']} jobs.", ""]
    lines += ["| family | target | dtype | device | seed | verdict | failing properties | replayed | time (s) | host |",
              "|---|---|---|---|---|---|---|---:|---:|---|"]
    for r in summary["jobs"]:
        failing = ", ".join(r["failing"]) or (r["message"].replace("|", "\\|")[:200] if r["message"] else "—")
        took = "skipped" if r["skipped"] else f"{r['seconds']:.1f}"
        lines.append(f"| {r['family']} | `{r['target']}` | {','.join(r['dtypes'])} | {r['device']} | {r['seed']} | "
                     f"{r['verdict']} | {failing} | {r['replayed']} | {took} | {r['host'] or '—'} |")
    return "\n".join(lines) + "\n"


def register(sub) -> None:
    p = sub.add_parser("campaign", help="run a certification campaign from a TOML file, here or on a Ray cluster")
    commands = p.add_subparsers(dest="campaign_command", required=True)
    import argparse

    run = commands.add_parser("run", help="run CAMPAIGN.toml; writes OUT/certificates/, campaign.md, campaign.json",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("campaign", metavar="CAMPAIGN", help="the campaign file (TOML; see campaigns/example.toml)")
    run.add_argument("--out", default="campaign-out", help="folder for certificates/, campaign.md and campaign.json")
    run.add_argument("--jobs", type=int, default=None,
                     help="jobs at a time: local processes (default 1), or the CPUs of a local Ray instance "
                          "(default: this machine's)")
    add_execution_options(run)
    run.add_argument("--json", action="store_true", default=False, help="print campaign.json on stdout")
    run.set_defaults(func=_run)
