"""``lrnnspec certify TARGET --family F``: certify a kernel against the spec (exit 0 certified,
1 not certified, 2 usage or import error). TARGET is ``package.module:function`` or
``path/to/file.py:function``."""

from __future__ import annotations

import json
import sys


from lrnnspec.targets import TargetError, load_target


def _certify(args) -> int:
    from lrnnspec.certificate import certify
    from lrnnspec.spec.errors import SpecError

    try:
        fn = load_target(args.target)
    except TargetError as exc:
        print(f"lrnnspec: error: {exc}", file=sys.stderr)
        return 2
    dtypes = [d.strip() for d in args.dtype.split(",") if d.strip()]
    contracts = {}
    for item in args.contract:
        dtype, sep, contract = item.partition("=")
        if not sep or not dtype or not contract:
            print(f"lrnnspec: error: --contract must be DTYPE=CONTRACT (e.g. fp32=tf32), got {item!r}", file=sys.stderr)
            return 2
        contracts[dtype.strip()] = contract.strip()
    progress = None if args.json else (lambda msg: print(f"  {msg}", file=sys.stderr))
    try:
        cert = certify(fn, args.family, convention=args.convention, dtypes=dtypes, device=args.device,
                       max_examples=args.examples, seed=args.seed, profile=args.profile, timeout=args.timeout,
                       out=args.out, target=args.target, progress=progress, contracts=contracts)
    except SpecError as exc:
        print(f"lrnnspec: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(cert.to_json(), indent=1))
    else:
        print(cert.to_markdown())
    return 0 if cert.certified else 1


def register(sub) -> None:
    p = sub.add_parser("certify", help="certify a kernel against the spec with Hypothesis")
    p.add_argument("target", help="package.module:function or path/to/file.py:function")
    p.add_argument("--family", required=True)
    p.add_argument("--convention", default="fla",
                   choices=("fla", "mamba_ssm", "mlstm_kernels", "native", "chain", "grid"),
                   help="sequence families: fla (default), mamba_ssm, mlstm_kernels, native; DAG families (plstm): "
                        "native = fn(graph, q, k, v, S, T, M, D, scale) on a flat node axis, chain / grid = "
                        "shape-based 1-D / 2-D forms; left at its default, inferred from the signature")
    p.add_argument("--dtype", default="fp32", help="comma-separated: fp32, fp16, bf16, fp64")
    p.add_argument("--device", default="cpu")
    p.add_argument("--contract", action="append", default=[], metavar="DTYPE=CONTRACT",
                   help="the precision contract the kernel declares for a dtype (a spec preset such as tf32, "
                        "mixed-bf16, or slot=format,...); repeatable; default: inputs/outputs in the dtype, fp32 inside")
    p.add_argument("--examples", type=int, default=None, help="examples per property (default: the profile's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--profile", default="ci", choices=("dev", "ci", "certify"))
    p.add_argument("--timeout", type=float, default=60.0, help="seconds one kernel call may take before the "
                                                                "property fails (default 60)")
    p.add_argument("--out", default=None, help="directory for the JSON + Markdown certificate")
    p.add_argument("--json", action="store_true", help="print the certificate as JSON")
    p.set_defaults(func=_certify)
