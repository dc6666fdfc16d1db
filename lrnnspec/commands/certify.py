"""``lrnnspec certify TARGET --family F``: certify a kernel against the spec.

Exit 0 certified (within the scope the certificate states), 1 not certified (a shrunk
counterexample per failing property), 2 usage error (a bad option, a target that cannot be
imported, a kernel whose signature cannot take the family's inputs), 3 could not run here (no
driver, no CUDA, a missing dependency of the kernel, its process died while loading) or the harness
failed (an ``error`` verdict; the traceback is in the certificate). TARGET is
``package.module:function`` or ``path/to/file.py:function``; it is imported only in the kernel's
own process, never here. Every option is checked before the kernel's process starts.
"""

from __future__ import annotations

import argparse
import json
import sys

from lrnnspec.errors import UsageError

from . import checks

SEQUENCE_CONVENTIONS = ("fla", "mamba_ssm", "mlstm_kernels", "native")
DAG_CONVENTIONS = ("native", "chain", "grid")


def parse_pairs(items: list[str], option: str, form: str) -> dict[str, str]:
    return checks.pairs(items, option, form)


def parse_contracts(items: list[str], requested=checks.DTYPES) -> dict[str, str]:
    return checks.contracts(items, list(requested))


def signature_problem(kernel) -> str | None:
    """Why the kernel's signature cannot take the family's inputs under its convention (parameters
    missing, or required parameters nothing fills), or None. A usage error, never a certificate:
    every call would raise ``TypeError``."""
    fam, sig = kernel.fam, kernel.signature
    if fam.kind != "sequence" or not sig.known:
        return None
    conv = kernel.domain.conv

    def spelled(name):
        return name if conv.keyword(name) == name else f"{name} (as {conv.keyword(name)!r})"

    missing = [spelled(i.name) for i in fam.inputs if not i.optional and not sig.accepts(conv.keyword(i.name))]
    fills = {conv.keyword(i.name) for i in fam.inputs} | {conv.keyword(o.name) for o in fam.options} | \
        set(conv.initial_keywords) | {conv.final_state, "cu_seqlens", "chunk_size", conv.keyword("chunk_size"),
                                      *conv.dims}
    unfilled = sorted(p for p in sig.required if p not in fills)
    if not missing and not unfilled:
        return None
    parts = []
    if missing:
        parts.append(f"it has no parameter for {', '.join(missing)}")
    if unfilled:
        parts.append(f"it requires {', '.join(unfilled)}, which {fam.name} does not supply")
    return (f"the kernel's signature cannot take the inputs of family {fam.name!r} under the {conv.name!r} "
            f"convention: {'; '.join(parts)} (check --family and --convention, or map names with --arg NAME=THEIRS)")


def _check_args(args) -> dict:
    """Every option, before anything starts (no torch import unless --device needs it)."""
    from lrnnspec.harness.targets import TargetError, check_target
    from lrnnspec.spec import get_family
    from lrnnspec.spec.errors import SpecError

    try:
        fam = get_family(checks.text_option("--family", args.family))
    except SpecError as exc:
        raise UsageError("--family", str(exc).split(": ", 1)[-1]) from None
    dtypes = checks.dtypes(args.dtype)
    checked = {"fam": fam, "dtypes": dtypes, "contracts": checks.contracts(args.contract, dtypes),
               "rename": checks.pairs(args.arg, "--arg", "NAME=THEIRS (e.g. q=query)"),
               "env": checks.pairs(args.env, "--env", "NAME=VALUE (e.g. TRITON_INTERPRET=1)"),
               "properties": None if args.properties is None else checks.name_list("--properties", args.properties,
                                                                                   what="property"),
               "require": [] if args.require is None else checks.name_list("--require", args.require, what="feature")}
    conventions = SEQUENCE_CONVENTIONS if fam.kind == "sequence" else DAG_CONVENTIONS
    if args.convention is not None and args.convention not in conventions:
        raise UsageError("--convention", f"{fam.name} is a {fam.kind} family; its conventions are "
                                         f"{', '.join(conventions)}", args.convention)
    if args.convention == "mamba_ssm" and fam.name not in ("mamba", "mamba2"):
        raise UsageError("--convention", f"mamba_ssm applies to the families mamba and mamba2, not {fam.name}",
                         args.convention)
    if fam.kind != "sequence":
        for option, value in (("--layout", args.layout), ("--arg", args.arg), ("--max-len", args.max_len)):
            if value:
                raise UsageError(option, f"applies to sequence families; {fam.name} is a {fam.kind} family", value)
    try:
        checked["target"] = check_target(checks.text_option("TARGET", args.target))
    except TargetError as exc:
        raise UsageError("TARGET", str(exc)) from None
    checked["out"] = None if args.out is None else checks.out_dir(args.out)
    if args.database is not None:
        checks.out_dir(args.database, "--database")
    checked["device"] = checks.device(args.device)
    return checked


def _certify(args) -> int:
    c = _check_args(args)
    lock = None if c["out"] is None else checks.OutLock(c["out"])
    try:
        return _run(args, c)
    finally:
        if lock is not None:
            lock.release()


def _run(args, c) -> int:
    from pathlib import Path

    from lrnnspec.harness.certificate import certificate_stem, certify
    from lrnnspec.harness.kernel import Kernel
    from lrnnspec.harness.process import KernelDied, LoadError
    from lrnnspec.errors import CannotRun

    fam, target = c["fam"], c["target"]
    from lrnnspec.harness.dag import PROPERTIES as DAG_PROPERTIES
    from lrnnspec.harness.sequence import PROPERTIES as SEQUENCE_PROPERTIES

    known = SEQUENCE_PROPERTIES if fam.kind == "sequence" else DAG_PROPERTIES
    if c["properties"] is not None:
        checks.name_list("--properties", args.properties, known, "property")
    from lrnnspec.harness.certificate import features

    if c["require"]:
        checks.name_list("--require", args.require, features(fam), "feature")
    log_path = None
    if c["out"] is not None:
        log_path = Path(c["out"]) / f"{certificate_stem(fam.name, target)}.log"
        log_path.unlink(missing_ok=True)
    options = {"layout": args.layout, "rename": c["rename"]} if fam.kind == "sequence" else {}
    try:
        kernel = Kernel(target, fam.name, args.convention, c["device"], args.timeout, c["contracts"], log=log_path,
                        env=c["env"], **options)
    except LoadError as exc:
        missing = exc.missing_dependency(target)
        if missing is not None:
            raise CannotRun("TARGET", f"the kernel needs the module {missing!r}, which is not installed here ({exc})",
                            args.target) from None
        raise UsageError("TARGET", f"cannot load it: {exc}", args.target) from None
    except KernelDied as exc:
        raise CannotRun("TARGET", f"the kernel's process failed while loading it: {exc}", args.target) from None
    progress = None if args.json else (lambda msg: print(f"  {msg}", file=sys.stderr))
    try:
        problem = signature_problem(kernel)
        if problem is not None:
            raise UsageError("--family", problem, fam.name)
        cert = certify(target, fam.name, convention=args.convention, dtypes=c["dtypes"], device=c["device"],
                       max_examples=args.examples, seed=args.seed, profile=args.profile, timeout=args.timeout,
                       out=c["out"], progress=progress, contracts=c["contracts"], properties=c["properties"],
                       require=c["require"], database=args.database or "default", kernel=kernel,
                       max_len=args.max_len)
    finally:
        kernel.close()
    if args.json:
        print(json.dumps(cert.to_json(), indent=1))
    else:
        print(cert.to_markdown())
        print(cert.summary, file=sys.stderr)
    if cert.certified:
        return 0
    return 1 if cert.failed else 3


def register(sub) -> None:
    p = sub.add_parser("certify", help="certify a kernel against the spec with Hypothesis",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("target", help="package.module:function or path/to/file.py:function")
    p.add_argument("--family", required=True)
    p.add_argument("--convention", default=None,
                   choices=("fla", "mamba_ssm", "mlstm_kernels", "native", "chain", "grid"),
                   help="sequence families: fla (default), mamba_ssm, mlstm_kernels, native; DAG families (plstm): "
                        "native = fn(graph, q, k, v, S, T, M, D, scale) on a flat node axis, chain / grid = "
                        "shape-based 1-D / 2-D forms; left out, inferred from the signature")
    p.add_argument("--dtype", default="fp32", help="comma-separated: fp32, fp16, bf16, fp64")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N; cuda without CUDA: exit 3")
    p.add_argument("--contract", action="append", default=[], metavar="DTYPE=CONTRACT",
                   help="the precision contract the kernel declares for a dtype (a spec preset such as tf32, "
                        "mixed-bf16, or slot=format,...); repeatable; default: inputs/outputs in the dtype, fp32 inside")
    p.add_argument("--properties", default=None, metavar="P[,P...]",
                   help="only these properties (default: every property of the family's kind)")
    p.add_argument("--require", default=None, metavar="FEATURE[,FEATURE...]",
                   help="features that must be supported (grouped_value_heads, distinct_value_dim, varlen, empty_segments, "
                        "initial_state, "
                        "final_state, scale, chunk_size, empty_sequence, backward, partial_chunk, the family's "
                        "options and optional inputs): unsupported, they fail the scope property")
    p.add_argument("--layout", default=None, choices=("time-first", "heads-first"),
                   help="the kernel's layout of q, k, v and the gates (default: time-first [B,T,H,·], or what the "
                        "table of known peer functions says)")
    p.add_argument("--arg", action="append", default=[], metavar="NAME=THEIRS",
                   help="the kernel's keyword for a spec input, option, initial_state or output_final_state "
                        "(e.g. q=query); repeatable")
    p.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                   help="a variable set in the kernel's process only (repeatable): e.g. TRITON_INTERPRET=1, or "
                        "LRNNSPEC_TRITON_AUTOTUNE=first to run an autotuned Triton kernel on its first config in "
                        "the interpreter (lrnnspec.peers.shims)")
    p.add_argument("--database", default=None, metavar="DIR",
                   help="the example database: counterexamples found before are replayed first (default: "
                        "OUT/.lrnnspec-examples with --out)")
    p.add_argument("--max-len", type=checks.positive_int, default=None, metavar="T",
                   help="the longest sequence drawn (default: past four chunks of 128, and the profile's long tier); "
                        "a smaller cap, for a kernel too slow here, drops the long tier and is stated in the summary")
    p.add_argument("--examples", type=checks.positive_int, default=None, help="examples per property (default: the profile's)")
    p.add_argument("--seed", type=checks.seed, default=0)
    p.add_argument("--profile", default="ci", choices=("dev", "ci", "certify"))
    p.add_argument("--timeout", type=checks.positive_seconds, default=60.0, help="seconds one kernel call may take before the "
                                                                "property fails (default 60)")
    p.add_argument("--out", default=None, help="directory for the JSON + Markdown certificate and the kernel's log (made if "
                                                "missing; one run at a time: a second run into it refuses)")
    p.add_argument("--json", action="store_true", help="print the certificate as JSON")
    p.set_defaults(func=_certify)
