"""``python -m lrnnspec.campaign.measure``: the same conformance run on the local executor and on a
local Ray instance, side by side, and what it says about scaling out; writes ``--report`` (the numbers
of ``reports/campaign.md`` come from two such runs).

Both runs are ``lrnnspec conformance`` subprocesses with the same options (``--jobs 2``: two processes,
or a Ray instance with 2 CPUs), one after the other, each into a folder of its own (so neither
replays the other's counterexamples). From the per-job times (``campaign.state``) it projects
the wall time on N machines of ``--cores`` cores each: the longest-processing-time-first schedule of
the jobs on N × cores slots, plus the fixed cost measured here (start, first-job warm-up).
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from lrnnspec.atomic import write_text


def _run(executor: str, args, out: Path) -> dict:
    cmd = [sys.executable, "-m", "lrnnspec", "conformance", "--jobs", str(args.jobs), "--executor", executor,
           "--out", str(out), "--profile", args.profile, *(["--examples", str(args.examples)] if args.examples else []),
           *(["--backend", args.backend] if args.backend else []), *(["--family", *args.family] if args.family else [])]
    start = time.perf_counter()
    run = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    state = json.loads((out / "certificates" / "campaign.state").read_text())["jobs"]
    verdicts = {}
    for stem in state:
        cert = json.loads((out / "certificates" / f"{stem}.json").read_text())
        verdicts[stem] = [(v["property"], v["dtype"], v["status"]) for v in cert["verdicts"]]
    return {"command": " ".join(["lrnnspec", *cmd[3:]]), "rc": run.returncode, "wall": wall,
            "jobs": {stem: s["seconds"] for stem, s in state.items()}, "verdicts": verdicts,
            "stderr": run.stderr[-2000:]}


def makespan(times: list[float], slots: int) -> float:
    """Longest processing time first on ``slots`` identical slots."""
    heap = [0.0] * slots
    for t in sorted(times, reverse=True):
        heapq.heappush(heap, heapq.heappop(heap) + t)
    return max(heap)


def _dist(times: list[float]) -> str:
    s = sorted(times)
    q = lambda p: s[min(len(s) - 1, int(round(p * (len(s) - 1))))]   # noqa: E731
    return (f"min {s[0]:.1f} s, median {q(0.5):.1f} s, p90 {q(0.9):.1f} s, max {s[-1]:.1f} s, "
            f"sum {sum(s):.0f} s over {len(s)} jobs")


def _driver_write_cost(certs: Path, scratch: Path) -> float:
    """Seconds the driver spends writing one job's files, averaged over the certificates in ``certs``."""
    import shutil

    from lrnnspec.campaign import resume
    from lrnnspec.campaign.driver import _write
    from lrnnspec.campaign.jobs import Job, JobResult

    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True)
    state, lines, n, spent = {}, [], 0, 0.0
    for path in sorted(certs.glob("*.json")):
        cert = resume.certificate_from_json(json.loads(path.read_text()))
        job = Job(target=cert.kernel["target"], family=cert.family, dtypes=tuple(cert.dtypes), stem=path.stem)
        start = time.perf_counter()              # what the driver does per finished job, and only that
        lines += _write(scratch, JobResult(job, "certificate", cert, log=""), state)
        write_text(scratch / "progress.jsonl", "".join(lines))
        resume.write_state(scratch, state)
        spent += time.perf_counter() - start
        n += 1
    return spent / max(n, 1)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--profile", default="ci")
    p.add_argument("--examples", type=int, default=None)
    p.add_argument("--backend", default=None)
    p.add_argument("--family", nargs="+", default=None)
    p.add_argument("--cores", type=int, default=2, help="cores per machine of the projection")
    p.add_argument("--work", default="/tmp/lrnnspec-campaign-measure")
    p.add_argument("--report", default="campaign-measure.md",
                   help="where the side-by-side table goes (reports/campaign.md cites two such runs)")
    p.add_argument("--raw", default=None, help="also write the raw numbers (JSON) here")
    p.add_argument("--order", default="local,ray", help="which executor runs first (local,ray or ray,local)")
    args = p.parse_args(argv)
    work = Path(args.work)
    runs = {}
    for executor in args.order.split(","):
        out = work / executor
        if out.exists():
            import shutil

            shutil.rmtree(out)
        print(f"measuring --executor {executor} …", file=sys.stderr, flush=True)
        runs[executor] = _run(executor, args, out)
        print(f"  {runs[executor]['wall']:.0f} s, exit {runs[executor]['rc']}", file=sys.stderr, flush=True)
    if args.raw:
        write_text(args.raw, json.dumps(runs, indent=1))
    local, ray = runs["local"], runs["ray"]
    same = local["verdicts"] == ray["verdicts"]
    times = list(local["jobs"].values())
    ray_times = list(ray["jobs"].values())
    overhead = 100 * (ray["wall"] - local["wall"]) / local["wall"]
    longest = max(local["jobs"], key=local["jobs"].get)
    fixed = max(local["wall"] - makespan(times, args.jobs), 0.0)
    lines = [
        "# Campaigns: the local executor against a local Ray instance, and the projection to a cluster", "",
        f"Generated by `python -m lrnnspec.campaign.measure` on {platform.node() and 'this machine'} "
        f"({os.cpu_count()} cores, shared with other work; Python {platform.python_version()}). Both runs, one "
        f"after the other ({args.order.replace(',', ' first, then ')}) in one invocation:", "",
        f"- `{local['command']}`", f"- `{ray['command']}`", "",
        "| executor | wall time | jobs | exit | verdicts |", "|---|---:|---:|---:|---|",
        f"| local (2 processes) | {local['wall']:.0f} s | {len(local['jobs'])} | {local['rc']} | — |",
        f"| ray (local instance, 2 CPUs) | {ray['wall']:.0f} s | {len(ray['jobs'])} | {ray['rc']} | "
        f"{'identical to local' if same else '**differ from local**'} |", "",
        f"Ray's overhead on this run: **{overhead:+.1f} %** of the local wall time (target ≤ 10 %).", "",
        f"Per-job time (local): {_dist(times)}; (ray): {_dist(ray_times)}. The longest job: `{longest}` "
        f"({local['jobs'][longest]:.0f} s).", "",
        f"## Projection to N machines of {args.cores} cores", "",
        f"Longest-processing-time-first on N × {args.cores} slots of the local run's per-job times, plus the "
        f"fixed cost of this run that is not job time ({fixed:.0f} s: interpreter and Ray start, the driver's "
        f"checks and reports):", "",
        "| machines | slots | projected wall time | bound by |", "|---:|---:|---:|---|"]
    for machines in (1, 4, 16, 64):
        slots = machines * args.cores
        span = makespan(times, slots)
        bound = "the longest job" if span <= max(times) * 1.001 else "total work ÷ slots"
        lines.append(f"| {machines} | {slots} | {span + fixed:.0f} s | {bound} |")
    per_write = _driver_write_cost(work / "local" / "certificates", work / "rewrite")
    lines += ["", f"What stops the scaling: the longest job (a job is one implementation here; a campaign file's "
                  f"jobs are one dtype each), then the driver's writing — {1e3 * per_write:.1f} ms per job here "
                  f"(certificate JSON + Markdown, progress log and state rewritten whole, atomically; measured by "
                  f"rewriting this run's certificates), i.e. {per_write * len(times):.1f} s for all {len(times)} "
                  f"jobs — and the example database (a directory: one small file per failing (kernel, property, "
                  f"dtype); Redis: one set).", ""]
    write_text(args.report, "\n".join(lines) + "\n")
    print(f"wrote {args.report}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
