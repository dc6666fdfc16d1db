"""``certify(target, family, ...) -> Certificate``: every property, one versioned certificate.

A certificate holds the kernel's identity (import path, sha256 of its package's source files, read
from disk by the harness), the environment of the kernel's worker process (read there before the
kernel was imported), the spec version, the precision contracts and tolerance constants, one verdict
per (property, dtype), the worst errors with their reproducers, coverage counts and time. It is
written as JSON and Markdown, with the worker's stdout/stderr beside it (``<stem>.log``, capped);
verdicts are appended to ``<out>/progress.jsonl`` as they come, so an interrupted run keeps them.

The kernel is imported and called only in the worker process (:mod:`.process`): nothing it does can
reach the code that draws the cases, computes the spec, compares, decides or writes.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from lrnnspec import PROFILE_EXAMPLES, SPEC_VERSION, __version__
from lrnnspec.spec import get_family
from lrnnspec.atomic import write_text
from lrnnspec.spec.errors import SpecError

from . import tolerance
from .examples import ExampleStore
from .kernel import TORCH_DTYPES, Kernel, check_contracts
from .runner import run_property
from .scope import LABELS, Scope
from .sequence import LONG_LENGTHS, MAX_LEN
from .verdicts import BLOCKING, ERROR, PASS, Verdict

CERTIFICATE_VERSION = 3      # 3: run id, kernel.directory (lrnnspec/schema/certificate.schema.json)
STEM_CHARS = 150             # certificate file names: longer stems end in a hash (a file name has ≤ 255 bytes)


def new_run_id() -> str:
    """A run's id: the UTC time and 6 random hex digits (sorts by start; unique across machines)."""
    import uuid

    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:6]


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
    log: dict | None = None          # the worker's output: file, bytes kept / dropped
    scope: dict | None = None        # the negotiated scope (lrnnspec.harness.scope.Scope)
    replayed: int = 0                # stored counterexamples replayed before drawing new cases
    # the worker's cost: calls, seconds starting workers, answering calls, the kernel's own share
    isolation: dict | None = None
    lengths: dict | None = None      # sequence families: {"max": T of the main tier, "long": T of the long tier}
    run: str | None = field(default_factory=new_run_id)    # tags this run's lines in progress.jsonl
    version: int = CERTIFICATE_VERSION

    @property
    def could_not_run(self) -> str | None:
        return (self.scope or {}).get("could_not_run")

    @property
    def certified(self) -> bool:
        """Nothing failed and something passed (every property unsupported certifies nothing)."""
        return not self.could_not_run and any(v.status == PASS for v in self.verdicts) \
            and all(v.status not in BLOCKING for v in self.verdicts)

    @property
    def errored(self) -> bool:
        """The harness failed somewhere, or could not run the kernel here: the run says nothing about
        the kernel there."""
        return bool(self.could_not_run) or any(v.status == ERROR for v in self.verdicts)

    @property
    def failed(self) -> bool:
        return any(v.status == "fail" for v in self.verdicts)

    @property
    def summary(self) -> str:
        """One line, leading with the scope: ``CERTIFIED (fp32; unsupported: grouped value heads, T % 64 ≠ 0)``."""
        if self.could_not_run:
            return f"COULD NOT RUN HERE ({self.could_not_run})"
        scope = Scope(**self.scope).line() if self.scope else "scope not negotiated"
        if self.lengths and self.lengths["max"] < MAX_LEN:
            scope += f"; lengths capped at T ≤ {self.lengths['max']}"
        head = ("CERTIFIED" if self.certified else "NOT CERTIFIED" if self.failed else
                "NOT CERTIFIED (harness error)" if self.errored else "NOTHING CERTIFIED (no property could run)")
        refused = (self.scope or {}).get("dtypes") or {}
        return f"{head} ({', '.join(d for d in self.dtypes if d not in refused) or 'no dtype'}; {scope})"

    def to_json(self) -> dict:
        """The certificate as JSON data; its schema: :mod:`lrnnspec.schema` (certificate.schema.json)."""
        d = asdict(self)
        d["certified"] = self.certified
        return d

    @classmethod
    def from_json(cls, data, where: str = "") -> "Certificate":
        """A certificate read back, validated against :mod:`lrnnspec.schema` first: a damaged one raises
        :class:`~lrnnspec.errors.UsageError` naming the JSON path (``verdicts[3].dtype``) and the rule."""
        from lrnnspec.schema import validate

        model = validate(data, where).model_dump()
        model.pop("certified")
        model["verdicts"] = [Verdict(**v) for v in model["verdicts"]]
        return cls(**model)

    def to_markdown(self) -> str:
        env = {k: v for k, v in self.environment.items() if k != "variables"}
        variables = self.environment.get("variables") or {}
        lines = [f"# Certificate: `{self.kernel['target']}` as `{self.family}` ({self.convention})", "",
                 f"**{self.summary}** — lrnnspec {__version__}, spec {self.spec_version}, profile `{self.profile}`, "
                 f"seed {self.seed}, ≤ {self.max_examples} examples per property"
                 f"{f', {self.replayed} stored counterexamples replayed first' if self.replayed else ''}, "
                 f"{self.seconds:.1f} s.", "",
                 f"- source sha256: `{self.kernel['sha256']}` over "
                 f"{', '.join(f'`{m}`' for m in self.kernel.get('sources', [])) or 'no readable source'}",
                 f"- environment (the kernel's process): {', '.join(f'{k} {v}' for k, v in env.items())}"
                 + (f"; {', '.join(f'{k}={v}' for k, v in variables.items())}" if variables else ""),
                 f"- contracts: {', '.join(f'{k}: `{v}`' for k, v in self.contracts.items())}",
                 f"- tolerance: {', '.join(f'{k} = {v}' for k, v in self.tolerance.items())}",
                 *([f"- graphs: {_graphs_line(self.graphs)}"] if self.graphs else []),
                 *([f"- kernel output: `{self.log['file']}` ({self.log['kept']} bytes kept, {self.log['dropped']} "
                    f"dropped)"] if self.log and self.log.get("file") else []),
                 *_scope_lines(self.scope), "",
                 "| property | dtype | verdict | examples | worst normalized error | note |",
                 "|---|---|---|---:|---:|---|"]
        for v in self.verdicts:
            worst = v.worst.get("worst_normalized")
            note = v.reason.replace("|", "\\|").replace("\n", " ")
            lines.append(f"| {v.property} | {v.dtype} | {v.status} | {v.examples} | "
                         f"{'' if worst is None else f'{worst:.3g}'} | {note} |")
        fails = [v for v in self.verdicts if v.counterexample]
        if fails:
            lines += ["", "## Counterexamples (shrunk; replay with `lrnnspec replay CERT.json`)", ""]
            for v in fails:
                lines += [f"- **{v.property} [{v.dtype}]**: {v.counterexample['message']}",
                          f"  - case: `{v.counterexample['description']}`"]
        errors = [v for v in self.verdicts if v.status == ERROR]
        if errors:
            lines += ["", "## Harness errors (lrnnspec's own failures; report them)", ""]
            for v in errors:
                lines += [f"- **{v.property} [{v.dtype}]**: {v.reason}", "", "```", v.traceback.strip()[-4000:], "```"]
        return "\n".join(lines) + "\n"


def _scope_lines(scope: dict | None) -> list[str]:
    if not scope:
        return []
    lines = [f"- scope: supported {', '.join(LABELS.get(f, f) for f in scope['supported']) or 'nothing probed'}"]
    lines += [f"  - unsupported {LABELS.get(f, f)}: {why}" for f, why in scope["unsupported"].items()]
    lines += [f"  - constraint: {c}" for c in scope["constraints"]]
    lines += [f"  - unsupported dtype {d}: {why}" for d, why in (scope.get("dtypes") or {}).items()]
    lines += [f"  - ignored {f}: {why}" for f, why in scope["ignored"].items()]
    if scope["required"]:
        lines.append(f"  - required: {', '.join(scope['required'])}")
    return lines


def _graphs_line(g: dict) -> str:
    parts = [f"{g['convention']} convention", "layouts " + ", ".join(g["layouts"])]
    if g.get("grid_directions"):
        parts.append("grid covers " + ", ".join(g["grid_directions"]))
    if g.get("chain_directions"):
        parts.append("chains " + ", ".join(g["chain_directions"]))
    parts.append(f"≤ {g['max_nodes']} nodes")
    if g.get("chunks"):
        parts.append("chunk sizes " + ", ".join(map(str, g["chunks"])))
    return "; ".join(parts)


def target_of(fn: "str | Callable") -> str:
    """The target string a worker process imports: ``fn`` itself when it is one, else
    ``module:qualname`` (or ``file.py:qualname`` for a module loaded from a file under another
    name) of a module-level function. A lambda, a closure or a ``functools.partial`` cannot be
    imported by a fresh process: pass a target string naming a module-level function instead."""
    if isinstance(fn, str):
        return fn
    if not callable(fn):
        raise SpecError("fn", f"must be a callable or a 'package.module:function' target, got {type(fn).__name__}")
    module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", None)
    if not module or not qualname or "<" in qualname or module == "__main__":
        raise SpecError("fn", f"{fn!r} cannot be imported by the kernel's own process (lambdas, closures, "
                              f"partials and functions of __main__ cannot): pass 'package.module:function' or "
                              f"'path/to/file.py:function'")
    mod = sys.modules.get(module)
    path = getattr(mod, "__file__", None)
    import importlib.util

    try:
        importable = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        importable = False
    if importable:
        return f"{module}:{qualname}"
    if path is None:
        raise SpecError("fn", f"module {module!r} of {qualname!r} has no file a fresh process could load")
    return f"{path}:{qualname}"


def kernel_sources(info: dict) -> dict[str, str]:
    """The source a kernel's behaviour comes from, name → text, read from disk by the harness: every
    Python file of the package directory its function is defined in (a Triton launcher's backward
    kernels in a sibling file included); only the module itself when it belongs to no package;
    ``{}`` when nothing can be read. ``info``: the worker's report (module name, file, whether the
    module is a package)."""
    name, path = info.get("module") or "", info.get("file")
    if not path:
        return {}
    if "." not in name and not info.get("is_package"):
        try:
            return {name: Path(path).read_text()}
        except OSError:
            return {}
    package = name if info.get("is_package") else name.rpartition(".")[0]
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


def kernel_identity(target: str, info: dict) -> dict:
    """Import path, the sha256 over :func:`kernel_sources` (module name and text, sorted by name) and
    the modules it covers."""
    sources = kernel_sources(info)
    digest = hashlib.sha256()
    for module in sorted(sources):
        digest.update(f"{module}\0{sources[module]}\0".encode())
    return {"target": target, "function": f"{info.get('module')}:{info.get('qualname')}",
            "sha256": digest.hexdigest() if sources else "unavailable", "sources": sorted(sources),
            "directory": os.getcwd()}


def features(family) -> list[str]:
    """The feature names ``require`` takes for ``family``: the negotiated features, its options and
    its optional inputs."""
    fam = get_family(family)
    names = [*LABELS, "partial_chunk", *(o.name for o in fam.options if not o.domain_only),
             *(i.name for i in fam.inputs if i.optional)]
    return list(dict.fromkeys(names))          # a negotiated feature may also be an option (scale)


def certificate_stem(family: str, target: str) -> str:
    """The file name (without suffix) of a certificate: ``family-target``, its tail replaced by a hash
    when longer than :data:`STEM_CHARS` (a long target or path still gets its certificate)."""
    stem = f"{family}-{target.replace(':', '.').replace('/', '_')}"
    if len(stem.encode()) <= STEM_CHARS:
        return stem
    digest = hashlib.sha256(stem.encode()).hexdigest()[:16]
    return stem.encode()[:STEM_CHARS - 17].decode(errors="ignore") + "-" + digest


def _check(dtypes, profile, max_examples, properties, known) -> tuple[list[str], int, list[str]]:
    dtypes = [dtypes] if isinstance(dtypes, str) else list(dtypes)
    for d in dtypes:
        if d not in TORCH_DTYPES:
            raise SpecError("dtypes", f"each must be one of {', '.join(TORCH_DTYPES)}, got {d!r}")
    if profile not in PROFILE_EXAMPLES:
        raise SpecError("profile", f"must be one of {', '.join(PROFILE_EXAMPLES)}, got {profile!r}")
    n = max_examples if max_examples is not None else PROFILE_EXAMPLES[profile]
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise SpecError("max_examples", f"must be a positive integer, got {n!r}")
    props = list(known) if properties is None else ([properties] if isinstance(properties, str) else list(properties))
    if not props:
        raise SpecError("properties", f"must name at least one property; known: {', '.join(known)}")
    for p in props:
        if p not in known:
            raise SpecError("properties", f"unknown property {p!r}; known: {', '.join(known)}")
    return dtypes, n, props


def certify(fn: "str | Callable", family: str, convention: str | None = None, dtypes=("fp32",), device: str = "cpu",
            max_examples: int | None = None, seed: int = 0, profile: str = "ci", properties=None,
            timeout: float = 60.0, out: str | Path | None = None, target: str | None = None,
            progress: Callable[[str], None] | None = None, contracts: dict[str, str] | None = None,
            env: dict | None = None, kernel: Kernel | None = None, require=(),
            database: str | Path | None = "default", layout: str | None = None,
            rename: dict[str, str] | None = None, max_len: int | None = None) -> Certificate:
    """Certify ``fn`` (a target string, or a module-level function) as an implementation of
    ``family`` (see the module docstring).

    ``convention``: how the kernel is called (default ``fla`` for sequence families, read from the
    signature for DAG families). ``contracts``: the precision contract the kernel declares per dtype
    (``{"fp32": "tf32"}``), the baseline of the tolerance. ``layout`` (``"heads-first"``) and ``rename``
    (spec name → the kernel's keyword) adapt the convention to the kernel (sequence families; a known
    peer function needs neither: :mod:`lrnnspec.peers.known`). ``env``: variables set in the kernel's
    process. ``kernel``: a :class:`Kernel` already started for this target (reused, not closed).
    ``require``: features that must be supported (an unsupported one fails the ``scope`` property;
    names: :func:`features`). ``database``: the directory of the example database (:mod:`.examples`;
    default ``<out>/.lrnnspec-examples`` when ``out`` is given, else none; None: none). ``max_len``:
    the longest sequence drawn (default: the boundary tier's and the profile's long tier; a smaller
    cap, for a kernel too slow to run long sequences here, drops the long tier and is stated in the
    certificate's summary). Raises
    :class:`~.process.LoadError` when the target cannot be imported in its process."""
    fam = get_family(family)
    target = target or target_of(fn)
    from .dag import PROPERTIES as DAG_PROPERTIES
    from .sequence import PROPERTIES as SEQUENCE_PROPERTIES

    known = SEQUENCE_PROPERTIES if fam.kind == "sequence" else DAG_PROPERTIES
    dtypes, n, props = _check(dtypes, profile, max_examples, properties, known)
    check_contracts(contracts)
    require = [require] if isinstance(require, str) else list(require or ())
    unknown = [f for f in require if f not in features(fam)]
    if unknown:
        raise SpecError("require", f"unknown feature(s) {unknown}; the features of {fam.name!r}: "
                                   f"{', '.join(features(fam))}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise SpecError("seed", f"must be an integer, got {seed!r}")
    if max_len is not None and (isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 1):
        raise SpecError("max_len", f"must be a positive integer (the longest T drawn), got {max_len!r}")
    if max_len is not None and fam.kind != "sequence":
        raise SpecError("max_len", f"applies to sequence families; {fam.name!r} is a {fam.kind} family")
    log_path = None
    if out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
        log_path = Path(out) / f"{certificate_stem(fam.name, target)}.log"
        if kernel is None:          # a kernel passed in may already be writing it
            log_path.unlink(missing_ok=True)
    own = kernel is None
    if own:
        if fam.kind != "sequence" and (layout or rename):
            raise SpecError("layout" if layout else "rename", f"applies to sequence families; {fam.name!r} is a "
                                                               f"{fam.kind} family (its conventions: native, chain, grid)")
        options = {"layout": layout, "rename": rename} if fam.kind == "sequence" else {}
        kernel = Kernel(target, fam.name, convention, device, timeout, contracts, log=log_path, env=env, **options)
    if database == "default":
        database = None if out is None else Path(out) / ".lrnnspec-examples"
    examples = None if database is None else ExampleStore(database)
    try:
        kernel.domain.long_len = kernel.domain.long_len and LONG_LENGTHS[profile]
        if max_len is not None:
            kernel.domain.max_len = min(kernel.domain.max_len, max_len)
            kernel.domain.long_len = kernel.domain.long_len if kernel.domain.long_len <= max_len else None
        kernel.domain.negotiate(require)
        return _run(kernel, target, dtypes, n, props, seed, profile, out, progress, log_path, examples)
    finally:
        if own:
            kernel.close()


def _run(kernel: Kernel, target, dtypes, n, props, seed, profile, out, progress, log_path, examples) -> Certificate:
    fam = kernel.fam
    cert = Certificate(kernel_identity(target, kernel.process.info), fam.name, kernel.convention, dtypes,
                       kernel.device, dict(kernel.process.environment or {}), SPEC_VERSION,
                       {d: kernel.contracts[d] for d in dtypes},
                       tolerance.constants(),
                       profile, seed, n, graphs=kernel.domain.coverage(), scope=kernel.domain.scope.to_json(),
                       lengths={"max": kernel.domain.max_len, "long": kernel.domain.long_len,
                                "sweep": kernel.domain.sweeps(n)}
                       if fam.kind == "sequence" else None)
    progress_log = None if out is None else Path(out) / "progress.jsonl"
    start = time.perf_counter()
    for dtype in dtypes if not cert.could_not_run else ():
        for prop in props:
            verdict = run_property(kernel, prop, dtype, max_examples=n, seed=seed, progress=progress, examples=examples)
            cert.verdicts.append(verdict)
            if progress_log is not None:
                with progress_log.open(mode="a") as fh:
                    fh.write(json.dumps({"run": cert.run, "target": target, **asdict(verdict)}) + "\n")
    cert.seconds = time.perf_counter() - start
    cert.scope = kernel.domain.scope.to_json()          # with the dtypes refused on their first property
    cert.replayed = 0 if examples is None else examples.replayed
    cert.isolation = dict(kernel.process.cost)
    log = kernel.process.log_stats()
    cert.log = {"file": log_path.name if log_path is not None and log_path.exists() else None, **log}
    if out is not None:
        stem = certificate_stem(fam.name, target)
        write_text(Path(out) / f"{stem}.json", json.dumps(cert.to_json(), indent=1))
        write_text(Path(out) / f"{stem}.md", cert.to_markdown())
    return cert


