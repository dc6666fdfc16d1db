"""``lrnnspec replay CERT.json``: re-run every counterexample of a certificate and print the discrepancy.

Exit 0 no counterexample reproduces (or the certificate has none), 1 at least one reproduces, 2 a
bad file, a damaged certificate (validated against lrnnspec/schema/certificate.schema.json; the
message names the JSON path and the rule) or a target that cannot be loaded, 3 could not run here
(the device, the kernel's process dying while loading) or the harness failed.

The kernel's process gets the environment variables the certificate recorded (``TORCH_*``,
``TRITON_*``, ``CUDA_*`` …); versions that differ from the certificate's (torch, triton, the GPU)
are listed before the replay, since a discrepancy may depend on them, and so is a kernel whose
source hash differs from the certificate's. A relative file target is found from the directory the
certificate was written from when it is not found from here.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from pathlib import Path

from lrnnspec.errors import CannotRun, UsageError

from . import checks

MAX_CERTIFICATE_BYTES = 256 << 20


def environment_differences(recorded: dict, here: dict) -> list[str]:
    """What differs between the certificate's environment and this one (variables excepted: they
    are restored)."""
    keys = sorted((set(recorded) | set(here)) - {"variables"})
    return [f"{k}: {recorded.get(k, '(absent)')} in the certificate, {here.get(k, '(absent)')} here"
            for k in keys if recorded.get(k) != here.get(k)]


def read_certificate(path: str) -> dict:
    """The certificate file, parsed and validated (UsageError naming the file, the JSON path, the rule)."""
    checks.text_option("CERT", path)
    p = Path(path)
    try:
        if p.is_dir():
            raise UsageError("CERT", "must be a certificate JSON file, not a directory", path)
        if p.stat().st_size > MAX_CERTIFICATE_BYTES:
            raise UsageError("CERT", f"is larger than {MAX_CERTIFICATE_BYTES >> 20} MiB: not a certificate", path)
        text = p.read_text()
    except UnicodeDecodeError as exc:
        raise UsageError("CERT", f"is not a UTF-8 text file ({exc.reason} at byte {exc.start})", path) from None
    except OSError as exc:
        raise UsageError("CERT", f"cannot be read ({exc.strerror or exc})", path) from None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise UsageError("CERT", f"is not valid JSON ({exc})", path) from None
    from lrnnspec.schema import validate

    validate(data, path)
    return data


def _semantics(cert: dict, path: str) -> list[tuple[int, dict]]:
    """What the schema cannot say: the family exists, each property and convention belongs to its
    kind, each case is of the certificate's family and can be rebuilt, and fits in memory. Returns the
    failing verdicts to replay, (index, verdict)."""
    from lrnnspec.spec import get_family
    from lrnnspec.spec.errors import SpecError

    try:
        fam = get_family(cert["family"])
    except SpecError as exc:
        raise UsageError(f"{path}: family", str(exc).split(": ", 1)[-1], cert["family"]) from None
    from lrnnspec.harness.dag import PROPERTIES as DAG_PROPERTIES
    from lrnnspec.harness.sequence import PROPERTIES as SEQUENCE_PROPERTIES

    known = SEQUENCE_PROPERTIES if fam.kind == "sequence" else DAG_PROPERTIES
    conventions = ("fla", "mamba_ssm", "mlstm_kernels", "native") if fam.kind == "sequence" else \
        ("native", "chain", "grid")
    if cert["convention"] not in conventions:
        raise UsageError(f"{path}: convention", f"must be one of {', '.join(conventions)} for the {fam.kind} family "
                                                f"{fam.name}", cert["convention"])
    from lrnnspec.harness.certificate import Certificate

    if Certificate.from_json(cert).certified != cert["certified"]:
        raise UsageError(f"{path}: certified", "contradicts the verdicts and scope it records", cert["certified"])
    failing = []
    for i, v in enumerate(cert["verdicts"]):
        where = f"{path}: verdicts[{i}]"
        if v["property"] not in known:
            raise UsageError(f"{where}.property", f"unknown property of a {fam.kind} family; known: "
                                                  f"{', '.join(known)}", v["property"])
        if v["dtype"] not in cert["dtypes"]:
            raise UsageError(f"{where}.dtype", f"must be one of the certificate's dtypes ({', '.join(cert['dtypes'])})",
                             v["dtype"])
        if v["status"] != "fail" or not v.get("counterexample"):
            continue
        case = v["counterexample"]["case"]
        if case is not None:
            if case["family"] != fam.name:
                raise UsageError(f"{where}.counterexample.case.family", f"must be the certificate's family {fam.name}",
                                 case["family"])
            if ("layout" in case) != (fam.kind == "dag"):
                raise UsageError(f"{where}.counterexample.case", f"must be a {fam.kind} case for {fam.name}")
            elements = 1
            for d in ([*case["dims"].values()] + list(case.get("shape") or [])):
                elements *= max(1, d)
            checks.memory_fits(f"{where}.counterexample.case.dims", elements * 8 * 16,
                               "replaying this counterexample")
        failing.append((i, v))
    return failing


def _rebuild(from_json, stored: dict, where: str, dtype):
    try:
        return from_json(stored).rounded(dtype)
    except Exception as exc:  # noqa: BLE001 - any failure to rebuild the case is a damaged certificate
        raise UsageError(f"{where}.counterexample.case", f"cannot be rebuilt as a case ({type(exc).__name__}: "
                                                         f"{str(exc)[:300]})") from None


def resolve_target(target: str, directory: str | None) -> str:
    """A file target as found from here, else from the directory the certificate was written in."""
    module, sep, attr = target.rpartition(":")
    if not sep or not (module.endswith(".py") or "/" in module):
        return target
    if Path(module).is_file():
        return f"{Path(module).resolve()}:{attr}"
    if directory and not Path(module).is_absolute() and (Path(directory) / module).is_file():
        return f"{(Path(directory) / module).resolve()}:{attr}"
    tried = f" (nor from {directory}, where the certificate was written)" if directory else ""
    raise UsageError("kernel.target", f"no such file from here{tried}", target)


def _replay(args) -> int:
    cert = read_certificate(args.certificate)
    failing = _semantics(cert, args.certificate)
    target, family, convention = cert["kernel"]["target"], cert["family"], cert["convention"]
    recorded = cert.get("environment") or {}
    if not failing:
        print(f"{target}: the certificate has no counterexample to replay")
        return 0
    device = checks.device(args.device or cert.get("device", "cpu"), "--device" if args.device else "device")
    target = resolve_target(target, cert["kernel"].get("directory"))
    from lrnnspec.harness.certificate import kernel_identity
    from lrnnspec.harness.kernel import TORCH_DTYPES, Kernel
    from lrnnspec.harness.process import KernelDied, LoadError
    from lrnnspec.harness.properties import property_function
    from lrnnspec.harness.verdicts import PropertyFailure
    from lrnnspec.spec import get_family
    from lrnnspec.spec.errors import SpecError
    from lrnnspec.strategies import case_from_json, dag_case_from_json

    from_json = dag_case_from_json if get_family(family).kind == "dag" else case_from_json
    cases = []
    for i, v in failing:
        stored = v["counterexample"]["case"]
        cases.append(None if stored is None else
                     _rebuild(from_json, stored, f"{args.certificate}: verdicts[{i}]", TORCH_DTYPES[v["dtype"]]))
    try:
        kernel = Kernel(target, family, convention, device, timeout=args.timeout, contracts=cert.get("contracts"),
                        env=recorded.get("variables") or {})
    except LoadError as exc:
        missing = exc.missing_dependency(target)
        if missing is not None:
            raise CannotRun("kernel.target", f"the kernel needs the module {missing!r}, which is not installed here",
                            target) from None
        raise UsageError("kernel.target", f"cannot load it: {exc}", target) from None
    except SpecError as exc:
        raise UsageError(f"{args.certificate}: {exc.argument}", str(exc).split(": ", 1)[-1]) from None
    except KernelDied as exc:
        raise CannotRun("kernel.target", f"the kernel's process failed while loading it: {exc}", target) from None
    try:
        differences = environment_differences(recorded, kernel.process.environment or {})
        if differences:
            print("environment differs from the certificate's (variables restored):")
            for line in differences:
                print(f"  {line}")
        here = kernel_identity(target, kernel.process.info or {})["sha256"]
        there = cert["kernel"]["sha256"]
        if here != there:
            print(f"lrnnspec replay: warning: the kernel's source differs from the certificate's (sha256 {there[:12]} "
                  f"there, {here[:12]} here): what reproduces, or not, is the changed kernel's", file=sys.stderr)
        kernel.domain.negotiate((cert.get("scope") or {}).get("required", []))
        reproduced = 0
        for (i, v), case in zip(failing, cases):
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
            except SpecError as exc:
                raise UsageError(f"{args.certificate}: verdicts[{i}].counterexample.case",
                                 f"not a valid input of {family} ({exc})") from None
            except Exception:  # noqa: BLE001 - the harness's own failure
                print(f"lrnnspec replay: the harness failed replaying this case:\n{traceback.format_exc()}",
                      file=sys.stderr)
                return 3
    finally:
        kernel.close()
    return 1 if reproduced else 0


def register(sub) -> None:
    p = sub.add_parser("replay", help="re-run the counterexamples stored in a certificate", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("certificate", help="a certificate JSON written by lrnnspec certify --out")
    p.add_argument("--device", default=None, help="override the certificate's device")
    p.add_argument("--timeout", type=checks.positive_seconds, default=60.0,
                   help="seconds one kernel call may take (default 60)")
    p.set_defaults(func=_replay)
