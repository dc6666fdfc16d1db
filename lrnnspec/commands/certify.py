"""``lrnnspec certify TARGET --family F``: certify a kernel against the spec.

Exit 0 certified (within the scope the certificate states), 1 not certified (a shrunk
counterexample per failing property), 2 usage error (a bad option, a target that cannot be
imported), 3 could not run here (no driver, no CUDA, a missing dependency of the kernel) or the
harness failed (an ``error`` verdict; the traceback is in the certificate). TARGET is ``package.module:function`` or
``path/to/file.py:function``; it is imported only in the kernel's own process, never here.
"""

from __future__ import annotations

import json
import sys


def parse_pairs(items: list[str], option: str, form: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ValueError(f"{option} must be {form}, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def parse_contracts(items: list[str]) -> dict[str, str]:
    return parse_pairs(items, "--contract", "DTYPE=CONTRACT (e.g. fp32=tf32)")


def _certify(args) -> int:
    from lrnnspec.harness.certificate import certify
    from lrnnspec.harness.process import KernelDied, LoadError
    from lrnnspec.harness.targets import TargetError, check_target
    from lrnnspec.spec.errors import SpecError

    try:
        target = check_target(args.target)
        contracts = parse_contracts(args.contract)
        rename = parse_pairs(args.arg, "--arg", "NAME=THEIRS (e.g. q=query)")
        env = parse_pairs(args.env, "--env", "NAME=VALUE (e.g. TRITON_INTERPRET=1)")
    except (TargetError, ValueError) as exc:
        print(f"lrnnspec: error: {exc}", file=sys.stderr)
        return 2
    dtypes = [d.strip() for d in args.dtype.split(",") if d.strip()]
    properties = None if args.properties is None else [p.strip() for p in args.properties.split(",") if p.strip()]
    require = [f.strip() for f in (args.require or "").split(",") if f.strip()]
    progress = None if args.json else (lambda msg: print(f"  {msg}", file=sys.stderr))
    try:
        cert = certify(target, args.family, convention=args.convention, dtypes=dtypes, device=args.device,
                       max_examples=args.examples, seed=args.seed, profile=args.profile, timeout=args.timeout,
                       out=args.out, progress=progress, contracts=contracts, properties=properties, require=require,
                       database=args.database or "default", layout=args.layout, rename=rename, env=env,
                       max_len=args.max_len)
    except SpecError as exc:
        print(f"lrnnspec: error: {exc}", file=sys.stderr)
        return 2
    except LoadError as exc:
        missing = exc.missing_dependency(target)
        if missing is not None:
            print(f"lrnnspec: could not run here: the kernel needs the module {missing!r}, which is not installed "
                  f"({exc})", file=sys.stderr)
            return 3
        print(f"lrnnspec: error: {exc}", file=sys.stderr)
        return 2
    except KernelDied as exc:
        print(f"lrnnspec: error: the kernel's process failed while loading {args.target!r}: {exc}", file=sys.stderr)
        return 3
    if args.json:
        print(json.dumps(cert.to_json(), indent=1))
    else:
        print(cert.to_markdown())
        print(cert.summary, file=sys.stderr)
    if cert.certified:
        return 0
    return 1 if cert.failed else 3


def register(sub) -> None:
    p = sub.add_parser("certify", help="certify a kernel against the spec with Hypothesis")
    p.add_argument("target", help="package.module:function or path/to/file.py:function")
    p.add_argument("--family", required=True)
    p.add_argument("--convention", default=None,
                   choices=("fla", "mamba_ssm", "mlstm_kernels", "native", "chain", "grid"),
                   help="sequence families: fla (default), mamba_ssm, mlstm_kernels, native; DAG families (plstm): "
                        "native = fn(graph, q, k, v, S, T, M, D, scale) on a flat node axis, chain / grid = "
                        "shape-based 1-D / 2-D forms; left out, inferred from the signature")
    p.add_argument("--dtype", default="fp32", help="comma-separated: fp32, fp16, bf16, fp64")
    p.add_argument("--device", default="cpu")
    p.add_argument("--contract", action="append", default=[], metavar="DTYPE=CONTRACT",
                   help="the precision contract the kernel declares for a dtype (a spec preset such as tf32, "
                        "mixed-bf16, or slot=format,...); repeatable; default: inputs/outputs in the dtype, fp32 inside")
    p.add_argument("--properties", default=None, metavar="P[,P...]",
                   help="only these properties (default: every property of the family's kind)")
    p.add_argument("--require", default=None, metavar="FEATURE[,FEATURE...]",
                   help="features that must be supported (grouped_value_heads, varlen, empty_segments, initial_state, "
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
    p.add_argument("--max-len", type=int, default=None, metavar="T",
                   help="the longest sequence drawn (default: past four chunks of 128, and the profile's long tier); "
                        "a smaller cap, for a kernel too slow here, drops the long tier and is stated in the summary")
    p.add_argument("--examples", type=int, default=None, help="examples per property (default: the profile's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--profile", default="ci", choices=("dev", "ci", "certify"))
    p.add_argument("--timeout", type=float, default=60.0, help="seconds one kernel call may take before the "
                                                                "property fails (default 60)")
    p.add_argument("--out", default=None, help="directory for the JSON + Markdown certificate and the kernel's log")
    p.add_argument("--json", action="store_true", help="print the certificate as JSON")
    p.set_defaults(func=_certify)
