"""``lrnnspec replay CERT.json``: re-run every counterexample of a certificate and print the discrepancy
(exit 0 if none reproduces, 1 if any does, 2 on a bad file or target, 3 if the harness fails).

The kernel's process gets the environment variables the certificate recorded (``TORCH_*``,
``TRITON_*``, ``CUDA_*`` …); versions that differ from the certificate's (torch, triton, the GPU)
are listed before the replay, since a discrepancy may depend on them.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path


def environment_differences(recorded: dict, here: dict) -> list[str]:
    """What differs between the certificate's environment and this one (variables excepted: they
    are restored)."""
    keys = sorted((set(recorded) | set(here)) - {"variables"})
    return [f"{k}: {recorded.get(k, '(absent)')} in the certificate, {here.get(k, '(absent)')} here"
            for k in keys if recorded.get(k) != here.get(k)]


def _replay(args) -> int:
    from lrnnspec.harness.kernel import TORCH_DTYPES, Kernel
    from lrnnspec.harness.process import KernelDied, LoadError
    from lrnnspec.harness.properties import property_function
    from lrnnspec.harness.verdicts import PropertyFailure
    from lrnnspec.spec import get_family
    from lrnnspec.spec.errors import SpecError
    from lrnnspec.strategies import case_from_json, dag_case_from_json

    try:
        cert = json.loads(Path(args.certificate).read_text())
        target, family, convention = cert["kernel"]["target"], cert["family"], cert["convention"]
        failing = [v for v in cert["verdicts"] if v.get("counterexample") and v.get("status") == "fail"]
        recorded = cert.get("environment") or {}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"lrnnspec: error: {args.certificate}: not a readable certificate ({type(exc).__name__}: {exc})",
              file=sys.stderr)
        return 2
    if not failing:
        print(f"{target}: the certificate has no counterexample to replay")
        return 0
    device, contracts = args.device or cert.get("device", "cpu"), cert.get("contracts")
    try:
        kernel = Kernel(target, family, convention, device, timeout=args.timeout, contracts=contracts,
                        env=recorded.get("variables") or {})
    except (LoadError, SpecError) as exc:
        print(f"lrnnspec: error: cannot load {target!r}: {exc}", file=sys.stderr)
        return 2
    except KernelDied as exc:
        print(f"lrnnspec: error: the kernel's process failed while loading {target!r}: {exc}", file=sys.stderr)
        return 3
    try:
        differences = environment_differences(recorded, kernel.process.environment or {})
        if differences:
            print("environment differs from the certificate's (variables restored):")
            for line in differences:
                print(f"  {line}")
        from_json = dag_case_from_json if get_family(family).kind == "dag" else case_from_json
        kernel.domain.negotiate((cert.get("scope") or {}).get("required", []))
        reproduced = 0
        for v in failing:
            stored = v["counterexample"]["case"]
            case = None if stored is None else from_json(stored).rounded(TORCH_DTYPES[v["dtype"]])
            print(f"{v['property']} [{v['dtype']}] on {'the negotiated scope' if case is None else case.describe()}")
            try:
                property_function(kernel, v["property"])(kernel, case, v["dtype"])
                print("  passes now (not reproduced)")
            except PropertyFailure as failure:
                reproduced += 1
                print(f"  reproduced: {failure}")
                for key, value in failure.detail.items():
                    if key != "traceback":
                        print(f"    {key}: {value}")
            except Exception:  # noqa: BLE001 - the harness's own failure
                print(f"lrnnspec: the harness failed replaying this case:\n{traceback.format_exc()}", file=sys.stderr)
                return 3
    finally:
        kernel.close()
    return 1 if reproduced else 0


def register(sub) -> None:
    p = sub.add_parser("replay", help="re-run the counterexamples stored in a certificate")
    p.add_argument("certificate", help="a certificate JSON written by lrnnspec certify --out")
    p.add_argument("--device", default=None, help="override the certificate's device")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds one kernel call may take (default 60)")
    p.set_defaults(func=_replay)
