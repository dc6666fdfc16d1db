"""``lrnnspec conformance``: certify every built-in implementation and write reports/conformance.md
(a matrix family × implementation × dtype → verdict, worst normalized error, time) plus the JSON
certificates. Exit 0 if every implementation is certified, 1 if a property failed, 3 if only the
harness failed.

``--device cuda`` certifies on the GPU and writes ``conformance-gpu.md`` + ``certificates-gpu/``
(the CPU report is left alone). ``--backend fla-ref,fla,transformers,mlstm_kernels,mamba_ssm``
certifies the field's functions instead (:mod:`lrnnspec.peers.backends`) into
``conformance-peers.md`` + ``.json`` + ``certificates-peers/``, with the written findings
(:mod:`lrnnspec.peers.findings`). ``--jobs N`` certifies N implementations at a time, each in its own
process; ``--executor ray`` on a Ray cluster (:mod:`lrnnspec.campaign`); ``--resume`` skips the
implementations already certified with the same kernel, settings and environment.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def report_names(device: str, peers: bool = False) -> tuple[str, str]:
    """(matrix file, certificate folder) for a device: the CPU report, or the ``-gpu`` one; the peers'
    (``conformance-peers``, ``certificates-peers``) when ``peers``."""
    import torch

    kind = torch.device(device).type
    suffix = ("-peers" if peers else "") + ("" if kind == "cpu" else "-gpu" if kind == "cuda" else f"-{kind}")
    return f"conformance{suffix}.md", f"certificates{suffix}"


def _conformance(args) -> int:
    from lrnnspec.errors import UsageError

    from . import checks

    # every option checked before torch is imported or anything runs (lrnnspec.errors: exit 2 / 3)
    dtypes_checked = checks.dtypes(args.dtype)
    if args.family is not None:
        from lrnnspec.spec import all_families

        known = [f.name for f in all_families()]
        for name in args.family:
            if name not in known:
                raise UsageError("--family", f"unknown family; known: {', '.join(known)}", name)
        if len(set(args.family)) < len(args.family):
            raise UsageError("--family", "names a family more than once", " ".join(args.family))
    checks.device(args.device)
    checks.out_dir(args.out)
    args.out_lock = checks.OutLock(Path(args.out))     # released by lrnnspec.cli.main when the run ends
    args.dtype = ",".join(dtypes_checked)
    import torch  # noqa: F401

    from lrnnspec.impls.registry import BACKENDS, DEFAULT_BACKENDS, backend_available, implementations
    from lrnnspec.peers.backends import PEER_BACKENDS

    if args.backend is None:
        backends = tuple(b for b in DEFAULT_BACKENDS if backend_available(b))
        for b in DEFAULT_BACKENDS:
            if b not in backends:
                print(f"lrnnspec: note: skipping backend {b!r}: its package is not installed", file=sys.stderr)
    else:
        backends = tuple(checks.name_list("--backend", args.backend, tuple(BACKENDS), "backend"))
    peers = [b for b in backends if b in PEER_BACKENDS]
    if peers and len(peers) < len(backends):
        raise UsageError("--backend", f"the peers' backends ({', '.join(peers)}) are reported apart from lrnnspec's "
                                      f"own ({', '.join(b for b in backends if b not in peers)}); run them separately",
                         args.backend)
    try:
        impls = [i for family in (args.family or [None])
                 for i in implementations(family, backends=backends, kinds=("sequence", "dag"), device=args.device)]
    except ValueError as exc:
        raise UsageError("--backend", str(exc), args.backend) from None
    if not impls:
        raise UsageError("--family", f"no implementation of {', '.join(args.family or ['any family'])} in the "
                                     f"backends {', '.join(backends)}", " ".join(args.family or []))
    out = Path(args.out)
    report, certs = report_names(args.device, peers=bool(peers))
    certs_dir = out / certs
    dtypes = [d.strip() for d in args.dtype.split(",") if d.strip()]
    # from here on: a campaign with defaults (lrnnspec.campaign), on the executor the options name
    from lrnnspec.atomic import write_text
    from lrnnspec.campaign.conformance import run as run_campaign
    from lrnnspec.commands.campaign import check_execution

    check_execution(args)
    rows, seconds, _ = run_campaign(impls, dtypes, args, certs_dir)
    if peers:
        from lrnnspec.peers.report import render_peers, rows_json

        write_text(out / report, render_peers(rows, dtypes, args, seconds, certs))
        write_text((out / report).with_suffix(".json"), json.dumps(rows_json(rows, dtypes, args, certs), indent=1))
    else:
        write_text(out / report, render(rows, dtypes, args, seconds))
    print(f"wrote {out / report} and {len(rows)} certificates in {certs_dir}")
    certs_only = [c for _, c in rows if not isinstance(c, str)]
    if len(certs_only) == len(rows) and all(c.certified for c in certs_only):
        return 0
    return 1 if any(c.failed for c in certs_only) else 3


def render(rows, dtypes, args, seconds) -> str:
    from lrnnspec import __version__
    from lrnnspec.harness.scope import Scope

    gpus = sorted({c.environment.get("gpu") for _, c in rows if not isinstance(c, str)} - {None})
    where = f" on {', '.join(gpus)}" if gpus else ""
    lines = [f"# Conformance — every built-in implementation against the spec{where}", "",
             f"Generated by `lrnnspec conformance` (lrnnspec {__version__}; device `{args.device}`; "
             f"profile `{args.profile}`, seed {args.seed}, "
             f"{args.examples or 'the profile’s'} examples per property; {seconds:.0f} s). Each row is a certificate in "
             f"`{report_names(args.device)[1]}/`; *worst* is the largest normalized error (error ÷ allowed, ≤ 1 "
             "passes) over the numeric properties, *max abs error* the largest absolute error beside it; *scope* the "
             "features the implementation does not support (negotiated); failing properties are named; properties "
             "that do not apply or need an unsupported feature are listed apart.", "",
             "| family | implementation | backend | dtype | contract | verdict | scope | worst | max abs error | "
             "failing properties | not applicable | time (s) |",
             "|---|---|---|---|---|---|---|---:|---:|---|---|---:|"]
    for impl, cert in rows:
        if isinstance(cert, str):                    # could not be loaded here: the reason, in every column
            lines += [f"| {impl.family} | `{impl.target.split(':')[1]}` ({impl.form}) | {impl.backend} | {dtype} | — | "
                      f"could not run here | {cert} | — | — | — | — | — |" for dtype in dtypes]
            continue
        for dtype in dtypes:
            vs = [v for v in cert.verdicts if v.dtype == dtype]
            worst = max((v.worst.get("worst_normalized", 0.0) for v in vs if v.worst), default=0.0)
            max_abs = max((v.worst.get("max_abs_error", 0.0) for v in vs if v.worst), default=0.0)
            fails = ", ".join(v.property + (" (harness error)" if v.status == "error" else "")
                              for v in vs if v.status in ("fail", "error")) or "—"
            na = ", ".join(v.property for v in vs if v.status in ("not_applicable", "unsupported")) or "—"
            verdict = ("could not run here" if cert.could_not_run else "certified"
                       if all(v.status not in ("fail", "error") for v in vs) else "**not certified**")
            scope = Scope(**cert.scope).line() if cert.scope else ""
            lines.append(f"| {impl.family} | `{impl.target.split(':')[1]}` ({impl.form}) | {impl.backend} | {dtype} | "
                         f"`{cert.contracts[dtype]}` | {verdict} | {scope} | {worst:.3g} | {max_abs:.2g} | {fails} | "
                         f"{na} | {sum(v.seconds for v in vs):.1f} |")
    rows = [(i, c) for i, c in rows if not isinstance(c, str)]
    costs = [c.isolation for _, c in rows if c.isolation]
    if costs:
        start = sum(c["start_seconds"] for c in costs)
        calls = sum(c["calls"] for c in costs)
        beyond = sum(c["call_seconds"] - c["kernel_seconds"] for c in costs)
        total = sum(c.seconds for _, c in rows)
        lines += ["", f"Isolation cost (each kernel in its own worker process): {start + beyond:.1f} s of the "
                      f"{total:.0f} s certifying — {start:.1f} s starting workers, {calls} calls at "
                      f"{1e3 * beyond / max(calls, 1):.2f} ms each beyond the kernel's own time "
                      f"({100 * (start + beyond) / max(total, 1e-9):.0f} %)."]
    failing = [(i, c) for i, c in rows if not c.certified]
    if failing:
        lines += ["", "## Counterexamples", ""]
        for impl, cert in failing:
            for v in cert.verdicts:
                if v.counterexample:
                    lines.append(f"- `{impl.target}` {v.property} [{v.dtype}]: {v.counterexample['message']} — "
                                 f"`{v.counterexample['description']}`")
    return "\n".join(lines) + "\n"


def register(sub) -> None:
    import argparse

    from . import checks

    p = sub.add_parser("conformance", help="certify every built-in implementation; writes conformance.md",
                       description=__doc__ + "\nExit 2 on a usage error (every option is checked before anything "
                                             "runs), 3 also when it cannot run here (--device cuda without CUDA).\n",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--family", nargs="+", default=None, metavar="F", help="only these families (at least one)")
    p.add_argument("--backend", default=None,
                   help="comma-separated backends: ours, torch (lrnnspec.impls) and triton (lrnnspec.kernels; in "
                        "Triton's interpreter without a GPU) — the default, where installed; or the peers', "
                        "reported apart in conformance-peers.md: fla-ref (fla-core's naive references), fla "
                        "(fla-core's Triton ops; in the interpreter without a GPU), transformers, mlstm_kernels, "
                        "mamba_ssm")
    p.add_argument("--device", default="cpu", help="torch device to certify on (default cpu); cuda writes "
                                                   "conformance-gpu.md and certificates-gpu/ (without CUDA: exit 3)")
    p.add_argument("--timeout", type=checks.positive_seconds, default=60.0,
                   help="seconds one kernel call may take before the property fails (default 60)")
    p.add_argument("--jobs", type=checks.positive_int, default=1,
                   help="implementations certified at a time, one process each (default 1)")
    p.add_argument("--dtype", default="fp32", help="comma-separated dtypes (default fp32)")
    p.add_argument("--examples", type=checks.positive_int, default=None,
                   help="examples per property (default: the profile's)")
    p.add_argument("--seed", type=checks.seed, default=0)
    p.add_argument("--profile", default="ci", choices=("dev", "ci", "certify"))
    p.add_argument("--out", default="reports", help="directory for conformance.md and certificates/ (one run at a "
                                                    "time: a second run into it refuses)")
    # the campaign's execution options (lrnnspec.campaign): --executor, --address, --resume, --database
    from lrnnspec.commands.campaign import add_execution_options

    add_execution_options(p)
    p.set_defaults(func=_conformance)
