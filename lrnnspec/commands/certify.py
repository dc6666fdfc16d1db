"""``lrnnspec certify TARGET --family F``: certify a kernel against the spec.

Exit 0 certified, 1 not certified (a shrunk counterexample per failing property), 2 usage error
(a bad option, a target that cannot be imported), 3 the harness failed (an ``error`` verdict; the
traceback is in the certificate). TARGET is ``package.module:function`` or
``path/to/file.py:function``; it is imported only in the kernel's own process, never here.
"""

from __future__ import annotations

import json
import sys


def parse_contracts(items: list[str]) -> dict[str, str]:
    contracts = {}
    for item in items:
        dtype, sep, contract = item.partition("=")
        if not sep or not dtype.strip() or not contract.strip():
            raise ValueError(f"--contract must be DTYPE=CONTRACT (e.g. fp32=tf32), got {item!r}")
        contracts[dtype.strip()] = contract.strip()
    return contracts


def _certify(args) -> int:
    from lrnnspec.harness.certificate import certify
    from lrnnspec.harness.process import KernelDied, LoadError
    from lrnnspec.harness.targets import TargetError, check_target
    from lrnnspec.spec.errors import SpecError

    try:
        target = check_target(args.target)
        contracts = parse_contracts(args.contract)
    except (TargetError, ValueError) as exc:
        print(f"lrnnspec: error: {exc}", file=sys.stderr)
        return 2
    dtypes = [d.strip() for d in args.dtype.split(",") if d.strip()]
    properties = None if args.properties is None else [p.strip() for p in args.properties.split(",") if p.strip()]
    progress = None if args.json else (lambda msg: print(f"  {msg}", file=sys.stderr))
    try:
        cert = certify(target, args.family, convention=args.convention, dtypes=dtypes, device=args.device,
                       max_examples=args.examples, seed=args.seed, profile=args.profile, timeout=args.timeout,
                       out=args.out, progress=progress, contracts=contracts, properties=properties)
    except SpecError as exc:
        print(f"lrnnspec: error: {exc}", file=sys.stderr)
        return 2
    except LoadError as exc:
        print(f"lrnnspec: error: {exc}", file=sys.stderr)
        return 2
    except KernelDied as exc:
        print(f"lrnnspec: error: the kernel's process failed while loading {args.target!r}: {exc}", file=sys.stderr)
        return 3
    if args.json:
        print(json.dumps(cert.to_json(), indent=1))
    else:
        print(cert.to_markdown())
    if cert.certified:
        return 0
    return 3 if cert.errored else 1


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
    p.add_argument("--examples", type=int, default=None, help="examples per property (default: the profile's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--profile", default="ci", choices=("dev", "ci", "certify"))
    p.add_argument("--timeout", type=float, default=60.0, help="seconds one kernel call may take before the "
                                                                "property fails (default 60)")
    p.add_argument("--out", default=None, help="directory for the JSON + Markdown certificate and the kernel's log")
    p.add_argument("--json", action="store_true", help="print the certificate as JSON")
    p.set_defaults(func=_certify)
