"""``lrnnspec replay CERT.json``: re-run every counterexample of a certificate and print the discrepancy
(exit 0 if none reproduces, 1 if any does, 2 on a bad file or target)."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _replay(args) -> int:
    from lrnnspec.certifier import PROPERTY_FUNCTIONS, TORCH_DTYPES, Kernel, PropertyFailure
    from lrnnspec.targets import TargetError, load_target
    from lrnnspec.spec import get_family
    from lrnnspec.strategies import case_from_json

    try:
        cert = json.loads(Path(args.certificate).read_text())
        target, family, convention = cert["kernel"]["target"], cert["family"], cert["convention"]
        failing = [v for v in cert["verdicts"] if v.get("counterexample")]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"lrnnspec: error: {args.certificate}: not a readable certificate ({type(exc).__name__}: {exc})",
              file=sys.stderr)
        return 2
    try:
        fn = load_target(target)
    except TargetError as exc:
        print(f"lrnnspec: error: {exc}", file=sys.stderr)
        return 2
    if not failing:
        print(f"{target}: the certificate has no counterexample to replay")
        return 0
    device, contracts = args.device or cert.get("device", "cpu"), cert.get("contracts")
    if get_family(family).kind == "dag":
        from lrnnspec.dag_certifier import DAG_PROPERTY_FUNCTIONS as functions
        from lrnnspec.dag_certifier import DagKernel
        from lrnnspec.dag_strategies import dag_case_from_json as from_json

        kernel = DagKernel(fn, family, convention, device, timeout=60, contracts=contracts)
    else:
        functions, from_json = PROPERTY_FUNCTIONS, case_from_json
        kernel = Kernel(fn, family, convention, device, timeout=60, contracts=contracts)
    reproduced = 0
    for v in failing:
        case = from_json(v["counterexample"]["case"]).rounded(TORCH_DTYPES[v["dtype"]])
        print(f"{v['property']} [{v['dtype']}] on {case.describe()}")
        try:
            functions[v["property"]](kernel, case, v["dtype"])
            print("  passes now (not reproduced)")
        except PropertyFailure as failure:
            reproduced += 1
            print(f"  reproduced: {failure}")
            for key, value in failure.detail.items():
                print(f"    {key}: {value}")
    return 1 if reproduced else 0


def register(sub) -> None:
    p = sub.add_parser("replay", help="re-run the counterexamples stored in a certificate")
    p.add_argument("certificate", help="a certificate JSON written by lrnnspec certify --out")
    p.add_argument("--device", default=None, help="override the certificate's device")
    p.set_defaults(func=_replay)
