"""``certify(fn, family, ...) -> Certificate``: run every property, record a versioned certificate.

A certificate holds the kernel's identity (import path, sha256 of its package's source files), the
environment, the spec version, the precision contract and tolerance constants, one verdict per
(property, dtype), the worst errors with their reproducers, coverage counts and time. It is written
as JSON and Markdown; verdicts are appended to ``<out>/progress.jsonl`` as they come, so an
interrupted run keeps them.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch

from lrnnspec import SPEC_VERSION, __version__, tolerance
from lrnnspec.certifier import PROFILE_EXAMPLES, PROPERTIES, TORCH_DTYPES, Kernel, Verdict, run_property
from lrnnspec.conventions import check_convention
from lrnnspec.spec import get_family
from lrnnspec.spec.contract import PrecisionContract
from lrnnspec.spec.errors import SpecError

CERTIFICATE_VERSION = 1


@dataclass
class Certificate:
    kernel: dict
    family: str
    convention: str
    dtypes: list[str]
    device: str
    environment: dict
    spec_version: str
    contracts: dict
    tolerance: dict
    profile: str
    seed: int
    max_examples: int
    graphs: dict | None = None       # DAG families: the layouts, directions and sizes covered
    verdicts: list[Verdict] = field(default_factory=list)
    seconds: float = 0.0
    version: int = CERTIFICATE_VERSION

    @property
    def certified(self) -> bool:
        return bool(self.verdicts) and all(v.status != "fail" for v in self.verdicts)

    def to_json(self) -> dict:
        d = asdict(self)
        d["certified"] = self.certified
        return d

    def to_markdown(self) -> str:
        verdict = "**CERTIFIED**" if self.certified else "**NOT CERTIFIED**"
        lines = [f"# Certificate: `{self.kernel['target']}` as `{self.family}` ({self.convention})", "",
                 f"{verdict} — lrnnspec {__version__}, spec {self.spec_version}, profile `{self.profile}`, "
                 f"seed {self.seed}, ≤ {self.max_examples} examples per property, {self.seconds:.1f} s.", "",
                 f"- source sha256: `{self.kernel['sha256']}` over "
                 f"{', '.join(f'`{m}`' for m in self.kernel.get('sources', [])) or 'no readable source'}",
                 f"- environment: {', '.join(f'{k} {v}' for k, v in self.environment.items())}",
                 f"- contracts: {', '.join(f'{k}: `{v}`' for k, v in self.contracts.items())}",
                 f"- tolerance: {', '.join(f'{k} = {v}' for k, v in self.tolerance.items())}",
                 *([f"- graphs: {_graphs_line(self.graphs)}"] if self.graphs else []), "",
                 "| property | dtype | verdict | examples | worst normalized error | note |",
                 "|---|---|---|---:|---:|---|"]
        for v in self.verdicts:
            worst = v.worst.get("worst_normalized")
            note = v.reason.replace("|", "\\|")
            lines.append(f"| {v.property} | {v.dtype} | {v.status} | {v.examples} | "
                         f"{'' if worst is None else f'{worst:.3g}'} | {note} |")
        fails = [v for v in self.verdicts if v.counterexample]
        if fails:
            lines += ["", "## Counterexamples (shrunk; replay with `lrnnspec replay CERT.json`)", ""]
            for v in fails:
                lines += [f"- **{v.property} [{v.dtype}]**: {v.counterexample['message']}",
                          f"  - case: `{v.counterexample['description']}`"]
        return "\n".join(lines) + "\n"


def _graphs_line(g: dict) -> str:
    parts = [f"{g['convention']} convention", "layouts " + ", ".join(g["layouts"])]
    if g.get("grid_directions"):
        parts.append("grid covers " + ", ".join(g["grid_directions"]))
    if g.get("chain_directions"):
        parts.append("chains " + ", ".join(g["chain_directions"]))
    parts.append(f"≤ {g['max_nodes']} nodes")
    if g.get("chunks"):
        parts.append("chunks " + ", ".join(map(str, g["chunks"])))
    return "; ".join(parts)


def kernel_sources(fn: Callable) -> dict[str, str]:
    """The source a kernel's behaviour comes from, name → text: every Python file of its function's
    package directory (tree), e.g. a Triton launcher's backward kernels in a sibling file — read from
    disk, so the same files give the same hash whatever the process has imported; only the module itself
    when it belongs to no package (a script, a file target); the function's own source when its module
    has no file; ``{}`` when nothing can be read."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    fn = inspect.unwrap(fn)
    name = getattr(fn, "__module__", None) or ""
    module = sys.modules.get(name)
    path = getattr(fn, "__globals__", {}).get("__file__") or getattr(module, "__file__", None)
    if path is None:
        try:
            return {getattr(fn, "__qualname__", repr(fn)): inspect.getsource(fn)}
        except (OSError, TypeError):
            return {}
    if "." not in name and not hasattr(module, "__path__"):
        try:
            return {name: Path(path).read_text()}
        except OSError:
            return {}
    package = name if hasattr(module, "__path__") else name.rpartition(".")[0]
    home = Path(path).resolve().parent
    sources = {}
    for file in sorted(home.rglob("*.py")):
        parts = file.relative_to(home).with_suffix("").parts
        dotted = ".".join((package, *(parts[:-1] if parts[-1] == "__init__" else parts)))
        try:
            sources[dotted] = file.read_text()
        except OSError:
            continue
    return sources


def kernel_identity(fn: Callable, target: str | None = None) -> dict:
    """Import path, the sha256 over :func:`kernel_sources` (module name and text, sorted by name) and the
    modules it covers."""
    sources = kernel_sources(fn)
    name = target or f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', repr(fn))}"
    digest = hashlib.sha256()
    for module in sorted(sources):
        digest.update(f"{module}\0{sources[module]}\0".encode())
    return {"target": name, "sha256": digest.hexdigest() if sources else "unavailable",
            "sources": sorted(sources)}


def environment(device: str = "cpu") -> dict:
    env = {"python": platform.python_version(), "torch": torch.__version__, "machine": platform.machine()}
    if torch.device(device).type == "cuda":
        env["gpu"], env["cuda"] = torch.cuda.get_device_name(device), torch.version.cuda
    try:
        import triton

        env["triton"] = triton.__version__
    except ImportError:
        pass
    return env


def certify(fn: Callable, family: str, convention: str = "fla", dtypes=("fp32",), device: str = "cpu",
            max_examples: int | None = None, seed: int = 0, profile: str = "ci", properties=None,
            timeout: float = 60.0, out: str | Path | None = None, target: str | None = None,
            progress: Callable[[str], None] | None = None, contracts: dict[str, str] | None = None) -> Certificate:
    """Certify ``fn`` as an implementation of ``family`` (see the module docstring).

    ``contracts``: the precision contract the kernel declares per dtype (``{"fp32": "tf32"}``: dot
    operands rounded to TF32), a spec contract preset or ``slot=format,...``; the spec's
    ``emulate`` engine under it is the baseline of the tolerance. Default per dtype:
    :data:`lrnnspec.tolerance.CONTRACTS` (inputs and outputs in the dtype, fp32 inside)."""
    dag = get_family(family).kind == "dag"
    if dag:
        from lrnnspec.dag_certifier import DAG_PROPERTIES, DagKernel, run_dag_property

        known, run = DAG_PROPERTIES, run_dag_property
        # "fla", the default, means "not given" for a DAG kernel: the convention comes from the signature
        dag_convention = None if convention == "fla" else convention
    else:
        check_convention(convention)
        known, run = PROPERTIES, run_property
    if not callable(fn):
        raise SpecError("fn", f"must be callable, got {type(fn).__name__}")
    dtypes = [dtypes] if isinstance(dtypes, str) else list(dtypes)
    for d in dtypes:
        if d not in TORCH_DTYPES:
            raise SpecError("dtypes", f"each must be one of {', '.join(TORCH_DTYPES)}, got {d!r}")
    if profile not in PROFILE_EXAMPLES:
        raise SpecError("profile", f"must be one of {', '.join(PROFILE_EXAMPLES)}, got {profile!r}")
    n = max_examples if max_examples is not None else PROFILE_EXAMPLES[profile]
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise SpecError("max_examples", f"must be a positive integer, got {n!r}")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise SpecError("timeout", f"must be a positive number of seconds, got {timeout!r}")
    props = list(properties or known)
    for p in props:
        if p not in known:
            raise SpecError("properties", f"unknown property {p!r}; known: {', '.join(known)}")
    for d, contract in (contracts or {}).items():
        if d not in TORCH_DTYPES:
            raise SpecError("contracts", f"keys must be dtypes ({', '.join(TORCH_DTYPES)}), got {d!r}")
        try:
            PrecisionContract.parse(contract)
        except SpecError as exc:
            raise SpecError("contracts", f"{d}: {exc}") from None
    kernel = (DagKernel(fn, family, dag_convention, device, timeout, contracts) if dag
              else Kernel(fn, family, convention, device, timeout, contracts))
    cert = Certificate(kernel_identity(fn, target), family, kernel.convention, dtypes, device, environment(device),
                       SPEC_VERSION,
                       {d: kernel.contracts[d] for d in dtypes},
                       {"C_BASE": tolerance.C_BASE, "C_MAG": tolerance.C_MAG, "C_EXP": tolerance.C_EXP,
                        "C_GRAD": tolerance.C_GRAD, "C_SENS": tolerance.C_SENS},
                       profile, seed, n, graphs=kernel.coverage() if dag else None)
    log = None
    if out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
        log = Path(out) / "progress.jsonl"
    start = time.perf_counter()
    for dtype in dtypes:
        for prop in props:
            verdict = run(kernel, prop, dtype, max_examples=n, seed=seed, progress=progress)
            cert.verdicts.append(verdict)
            if log is not None:
                with log.open("a") as fh:
                    fh.write(json.dumps(asdict(verdict)) + "\n")
    cert.seconds = time.perf_counter() - start
    if out is not None:
        stem = f"{family}-{cert.kernel['target'].replace(':', '.').replace('/', '_')}"
        (Path(out) / f"{stem}.json").write_text(json.dumps(cert.to_json(), indent=1))
        (Path(out) / f"{stem}.md").write_text(cert.to_markdown())
    return cert
