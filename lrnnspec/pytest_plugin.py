"""pytest plugin: certify a kernel from your own test suite, one pytest test per (property, dtype).

Registered through the ``pytest11`` entry point ``lrnnspec``: installed, it is loaded in every pytest
session (``-p no:lrnnspec`` turns it off; with ``PYTEST_DISABLE_PLUGIN_AUTOLOAD=1``, ``-p lrnnspec``
loads it by name — not ``-p lrnnspec.pytest_plugin`` while autoloading is on, which registers the module
a second time and makes pytest stop). It is inert — no tests, no options read beyond its own, nothing
imported — until a target is configured::

    LRNNSPEC_TARGET=my_pkg.ops:chunk_gla LRNNSPEC_FAMILY=gla pytest
    pytest --lrnnspec-target my_pkg/ops.py:chunk_gla --lrnnspec-family gla --lrnnspec-dtypes fp32,bf16

Options (a command-line option overrides its environment variable; an empty variable is unset):

==========================  =======================  =================================================
option                      environment variable     value
==========================  =======================  =================================================
``--lrnnspec-target``       ``LRNNSPEC_TARGET``      ``package.module:function`` or ``path/to/file.py:function``
``--lrnnspec-family``       ``LRNNSPEC_FAMILY``      the spec family (required with a target)
``--lrnnspec-convention``   ``LRNNSPEC_CONVENTION``  fla (default), mamba_ssm, mlstm_kernels, native; DAG: chain, grid
``--lrnnspec-dtypes``       ``LRNNSPEC_DTYPES``      comma-separated fp32 (default), fp16, bf16, fp64
``--lrnnspec-device``       ``LRNNSPEC_DEVICE``      a torch device, default cpu
``--lrnnspec-xfails``       ``LRNNSPEC_XFAILS``      a file of test ids expected to fail (below)
``--lrnnspec-max-examples`` ``LRNNSPEC_MAX_EXAMPLES`` examples per property (default: see below)
``--lrnnspec-out``          ``LRNNSPEC_OUT``         where failing tests write their replay file
``--lrnnspec-properties``   ``LRNNSPEC_PROPERTIES``  comma-separated properties (default: all of the kind)
``--lrnnspec-require``      ``LRNNSPEC_REQUIRE``     comma-separated features that must be supported
==========================  =======================  =================================================

The kernel's scope is negotiated when the session starts (``lrnnspec certify`` does the same): a
feature it refuses cleanly is unsupported, and the tests that need it are skipped with the kernel's
message; ``lrnnspec::scope`` fails when an accepted feature is ignored or a required one unsupported.
A kernel this machine cannot run (no GPU driver, no CUDA) has every test skipped, "could not run
here".

Any of them set without a target is a usage error (so is every bad value), never ignored.

Test ids: ``lrnnspec::<property>[<dtype>]`` (``lrnnspec::forward[fp32]``, ``lrnnspec::gradients[bf16]``),
one per property of the family's kind (:data:`lrnnspec.harness.sequence.PROPERTIES`, or
:data:`lrnnspec.harness.dag.PROPERTIES` for DAG families such as pLSTM) and per dtype, ordered
dtype by dtype as in ``lrnnspec certify``. The kernel runs in its own process, started once for the
session. They are added to whatever else the session collects, under a collector
named ``lrnnspec`` and with the marker ``lrnnspec``: select them with ``-m lrnnspec`` (or leave them
out with ``-m "not lrnnspec"``), one property with ``-k forward``, one test with ``-k "forward and fp32"``
or drop one with ``--deselect "lrnnspec::forward[fp32]"``. A verdict maps onto pytest's outcomes:
pass → passed; not applicable → skipped with the reason; fail → failed with the shrunk
counterexample and the command replaying it (``lrnnspec replay FILE``; the file is written to
``--lrnnspec-out`` or a fresh temporary directory); error (the harness's own failure) → failed with
its traceback.

Examples per property: ``--lrnnspec-max-examples`` / ``LRNNSPEC_MAX_EXAMPLES``; else the active
Hypothesis profile (``--hypothesis-profile NAME`` or one a conftest loaded): for lrnnspec's own profile
names (dev, ci, certify) the count ``lrnnspec certify --profile NAME`` uses, for any other profile its
``max_examples``; else ``LRNNSPEC_PROFILE``; else the ``ci`` profile's count. The seed is 0, or
``--hypothesis-seed`` (which must then be an integer). Like ``lrnnspec certify``, each kernel call may take
60 s at most.

Xfails file (as data-apis/array-api-tests' ``--xfails-file``): one test id per line, ``#`` starts a
comment that becomes the xfail reason, blank lines are ignored::

    # known problems of my_pkg 0.3
    lrnnspec::gradients[fp16]   # overflow in exp of the backward
    lrnnspec::varlen[bf16]

Listed tests are marked ``xfail`` non-strict, as array-api-tests does: a listed test that fails is
reported XFAIL, one that passes XPASS, neither fails the run. An id that is not one of the tests this
configuration produces (a typo, a property that does not exist, a dtype not requested) is a usage
error naming the file and line; so is an id listed twice.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ID_PREFIX = "lrnnspec"
DEFAULT_TIMEOUT = 60.0

# dest: (command-line option, environment variable, help)
OPTIONS = {
    "target": ("--lrnnspec-target", "LRNNSPEC_TARGET",
               "kernel to certify: package.module:function or path/to/file.py:function"),
    "family": ("--lrnnspec-family", "LRNNSPEC_FAMILY", "spec family the kernel implements (required with a target)"),
    "convention": ("--lrnnspec-convention", "LRNNSPEC_CONVENTION",
                   "calling convention: fla (default), mamba_ssm, mlstm_kernels, native"),
    "dtypes": ("--lrnnspec-dtypes", "LRNNSPEC_DTYPES", "comma-separated dtypes: fp32 (default), fp16, bf16, fp64"),
    "device": ("--lrnnspec-device", "LRNNSPEC_DEVICE", "torch device for the kernel's inputs (default cpu)"),
    "xfails": ("--lrnnspec-xfails", "LRNNSPEC_XFAILS",
               "file of lrnnspec test ids expected to fail, one per line, '#' starts the reason"),
    "max_examples": ("--lrnnspec-max-examples", "LRNNSPEC_MAX_EXAMPLES",
                     "Hypothesis examples per property (default: the active profile's, else the ci profile's)"),
    "out": ("--lrnnspec-out", "LRNNSPEC_OUT",
            "directory for the replay files of failing lrnnspec tests (default: a temporary directory)"),
    "properties": ("--lrnnspec-properties", "LRNNSPEC_PROPERTIES",
                   "comma-separated properties to test (default: every property of the family's kind)"),
    "require": ("--lrnnspec-require", "LRNNSPEC_REQUIRE",
                "comma-separated features that must be supported (unsupported, they fail lrnnspec::scope)"),
}


@dataclass
class _Setting:
    value: str
    source: str          # the option or environment variable it came from, for error messages


@dataclass
class Setup:
    """A validated configuration: what the plugin's tests run."""

    target: str
    family: str
    convention: str
    dtypes: list[str]
    device: str
    max_examples: int
    examples_from: str
    seed: int
    properties: tuple[str, ...]
    kernel: Any                                       # lrnnspec.harness.kernel.Kernel
    xfails: dict[str, tuple[str, int, str]] = field(default_factory=dict)   # id -> (file, line, reason)
    xfails_file: str | None = None
    out: Path | None = None

    def node_ids(self) -> list[str]:
        return [node_id(p, d) for d in self.dtypes for p in self.properties]


_SETUP = pytest.StashKey["Setup | None"]()


def node_id(prop: str, dtype: str) -> str:
    """The pytest node id (and xfails-file id) of one property checked in one dtype."""
    return f"{ID_PREFIX}::{prop}[{dtype}]"


class _Bad(pytest.UsageError):
    def __init__(self, message: str):
        super().__init__(f"lrnnspec: {message}")


# --- hooks -------------------------------------------------------------------------------------------
def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("lrnnspec", "lrnnspec: certify a linear-RNN kernel against the spec")
    for dest, (flag, env, text) in OPTIONS.items():
        group.addoption(flag, dest=f"lrnnspec_{dest}", default=None, metavar=dest.upper(),
                        help=f"{text} [env {env}]")


@pytest.hookimpl(trylast=True)  # after Hypothesis' own pytest_configure has loaded --hypothesis-profile
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "lrnnspec: a property of the kernel configured with --lrnnspec-target")
    config.stash[_SETUP] = _configure(config)


def pytest_report_header(config: pytest.Config):
    setup = config.stash.get(_SETUP, None)
    if setup is None:
        return None
    xf = f", xfails {setup.xfails_file} ({len(setup.xfails)} ids)" if setup.xfails_file else ""
    return (f"lrnnspec: {setup.target} as {setup.family} ({setup.convention}) on {setup.device}, dtypes "
            f"{','.join(setup.dtypes)}, {setup.max_examples} examples per property ({setup.examples_from}), "
            f"seed {setup.seed}{xf}")


@pytest.hookimpl(tryfirst=True)  # before -k / -m / --deselect filter the items
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    setup = config.stash.get(_SETUP, None)
    if setup is None:
        return
    collector = LrnnspecCollector.from_parent(session, name=ID_PREFIX, nodeid=ID_PREFIX, setup=setup)
    report = collector.ihook.pytest_make_collect_report(collector=collector)
    collector.ihook.pytest_collectreport(report=report)   # counted in "collected N items"
    if not report.passed:
        raise _Bad(f"could not create the tests: {report.longrepr}")
    for item in report.result:
        item.ihook.pytest_itemcollected(item=item)
        items.append(item)


# --- nodes ---------------------------------------------------------------------------------------------
class LrnnspecCollector(pytest.Collector):
    """The virtual node ``lrnnspec`` holding one item per (property, dtype)."""

    def __init__(self, *, setup: Setup, **kw):
        super().__init__(**kw)
        self.lrnnspec_setup = setup

    def collect(self):
        items = []
        for dtype in self.lrnnspec_setup.dtypes:
            for prop in self.lrnnspec_setup.properties:
                item = LrnnspecItem.from_parent(self, name=f"{prop}[{dtype}]", prop=prop, dtype=dtype)
                item.add_marker(pytest.mark.lrnnspec)
                listed = self.lrnnspec_setup.xfails.get(item.nodeid)
                if listed is not None:
                    path, line, reason = listed
                    where = f"{path}:{line}"
                    item.add_marker(pytest.mark.xfail(reason=f"{reason} ({where})" if reason else f"listed in {where}",
                                                      strict=False))
                items.append(item)
        return items


class LrnnspecItem(pytest.Item):
    """One property of the configured kernel in one dtype: ``run_property`` decides the outcome."""

    def __init__(self, *, prop: str, dtype: str, **kw):
        super().__init__(**kw)
        self.prop, self.dtype = prop, dtype

    def runtest(self) -> None:
        from lrnnspec.harness.runner import run_property

        setup: Setup = self.parent.lrnnspec_setup
        could_not_run = setup.kernel.domain.scope.could_not_run
        if could_not_run:
            pytest.skip(f"{self.nodeid}: could not run here: {could_not_run}")
        verdict = run_property(setup.kernel, self.prop, self.dtype, max_examples=setup.max_examples, seed=setup.seed)
        # plain Python numbers: reports cross process boundaries (pytest-xdist) and land in JUnit XML
        self.user_properties.append(("lrnnspec_examples", int(verdict.examples)))
        if "worst_normalized" in verdict.worst:
            self.user_properties.append(("lrnnspec_worst_normalized", float(verdict.worst["worst_normalized"])))
        if verdict.status == "pass":
            return
        if verdict.status in ("not_applicable", "unsupported"):
            pytest.skip(f"{self.nodeid}: {verdict.status.replace('_', ' ')}: {verdict.reason}")
        if verdict.status == "fail":
            pytest.fail(self._failure_text(setup, verdict), pytrace=False)
        if verdict.status == "error":
            pytest.fail(f"{self.nodeid}: the harness failed (lrnnspec's own error, not the kernel's): "
                        f"{verdict.reason}\n{verdict.traceback}", pytrace=False)
        pytest.fail(f"{self.nodeid}: unexpected verdict status {verdict.status!r}: {verdict.reason}", pytrace=False)

    def _failure_text(self, setup: Setup, verdict) -> str:
        lines = [f"property {self.prop!r} [{self.dtype}] fails: {verdict.reason}",
                 f"  kernel: {setup.target} as {setup.family} ({setup.convention} convention) on {setup.device}; "
                 f"seed {setup.seed}, at most {setup.max_examples} examples drawn, {verdict.examples} cases run "
                 f"(shrinking included)"]
        cex = verdict.counterexample
        if cex:
            lines.append(f"  shrunk counterexample: {cex['description']}")
            for key, value in (cex.get("detail") or {}).items():
                lines.append(f"    {key}: {value}")
            try:
                path = _write_replay(setup, verdict)
            except OSError as exc:
                lines.append(f"  (could not write the replay file: {exc})")
            else:
                lines.append(f"  replay: lrnnspec replay {path}")
        return "\n".join(lines)

    def reportinfo(self):
        return self.path, None, self.nodeid


# --- configuration ---------------------------------------------------------------------------------------
def _read(config: pytest.Config, dest: str) -> _Setting | None:
    flag, env, _ = OPTIONS[dest]
    value = config.getoption(f"lrnnspec_{dest}", None)
    if value is not None:
        if not value.strip():
            raise _Bad(f"{flag}: must not be empty")
        return _Setting(value.strip(), flag)
    value = os.environ.get(env, "").strip()
    return _Setting(value, env) if value else None


def _either(dest: str) -> str:
    flag, env, _ = OPTIONS[dest]
    return f"{flag} / {env}"


def _configure(config: pytest.Config) -> Setup | None:
    raw = {dest: _read(config, dest) for dest in OPTIONS}
    target = raw["target"]
    if target is None:
        stray = [s.source for s in raw.values() if s is not None]
        if stray:
            raise _Bad(f"{', '.join(stray)} set without a target: set {_either('target')} to the kernel to certify "
                       f"(package.module:function or path/to/file.py:function), or unset {', '.join(stray)}")
        return None

    # only now, with a target configured, is anything heavy imported
    from lrnnspec import PROFILE_EXAMPLES
    from lrnnspec.harness.conventions import CONVENTIONS, DAG_CONVENTIONS, convention_for
    from lrnnspec.harness.kernel import TORCH_DTYPES, Kernel
    from lrnnspec.harness.process import KernelDied, LoadError
    from lrnnspec.harness.certificate import features
    from lrnnspec.harness.targets import TargetError, check_target
    from lrnnspec.spec import get_family
    from lrnnspec.spec.errors import SpecError

    family = raw["family"]
    if family is None:
        raise _Bad(f"{target.source} is set, so {_either('family')} is required: the spec family the kernel "
                   f"implements (see `lrnnspec spec list`)")
    try:
        fam = get_family(family.value)
    except SpecError as exc:
        raise _Bad(f"{family.source}: {exc}") from None
    known = CONVENTIONS if fam.kind == "sequence" else DAG_CONVENTIONS
    convention = raw["convention"].value if raw["convention"] else None
    if convention is not None:
        source = raw["convention"].source
        if convention not in known:
            raise _Bad(f"{source}: must be one of {', '.join(known)}, got {convention!r}")
        if fam.kind == "sequence":
            try:
                convention_for(convention, fam.name)
            except SpecError as exc:
                raise _Bad(f"{source}: {str(exc).removeprefix('convention: ')}") from None
    dtypes = _parse_dtypes(raw["dtypes"], TORCH_DTYPES)
    device = _check_device(raw["device"])
    max_examples, examples_from = _examples(config, raw["max_examples"], PROFILE_EXAMPLES)
    seed = _seed(config)
    try:
        checked = check_target(target.value)
        kernel = Kernel(checked, fam.name, convention, device, DEFAULT_TIMEOUT)
    except TargetError as exc:
        raise _Bad(f"{target.source}: {exc}") from None
    except LoadError as exc:
        raise _Bad(f"{target.source}: {exc}") from None
    except KernelDied as exc:
        raise _Bad(f"{target.source}: the kernel's process failed while loading {target.value!r}: {exc}") from None
    except SpecError as exc:
        raise _Bad(f"{target.source}: cannot certify {target.value!r}: {exc}") from None
    config.add_cleanup(kernel.close)

    out = None
    if raw["out"] is not None:
        out = Path(raw["out"].value).expanduser().resolve()
        if out.exists() and not out.is_dir():
            raise _Bad(f"{raw['out'].source}: {out} exists and is not a directory")

    properties = tuple(kernel.domain.properties)
    if raw["properties"] is not None:
        chosen = [p.strip() for p in raw["properties"].value.split(",") if p.strip()]
        bad = [p for p in chosen if p not in properties]
        if bad or not chosen:
            raise _Bad(f"{raw['properties'].source}: each must be a property of {fam.kind} families "
                       f"({', '.join(properties)}), got {raw['properties'].value!r}")
        properties = tuple(chosen)
    required = [f.strip() for f in raw["require"].value.split(",") if f.strip()] if raw["require"] else []
    unknown = [f for f in required if f not in features(fam)]
    if unknown:
        raise _Bad(f"{raw['require'].source}: unknown feature(s) {unknown}; the features of {fam.name!r}: "
                   f"{', '.join(features(fam))}")
    kernel.domain.negotiate(required)
    setup = Setup(checked, fam.name, kernel.convention, dtypes, device, max_examples, examples_from, seed,
                  properties, kernel, out=out)
    if raw["xfails"] is not None:
        setup.xfails_file = raw["xfails"].value
        setup.xfails = _parse_xfails(raw["xfails"], setup.node_ids())
    return setup


def _parse_dtypes(setting: _Setting | None, known) -> list[str]:
    if setting is None:
        return ["fp32"]
    dtypes = [d.strip() for d in setting.value.split(",")]
    for d in dtypes:
        if d not in known:
            raise _Bad(f"{setting.source}: each comma-separated dtype must be one of {', '.join(known)}, "
                       f"got {d!r} in {setting.value!r}")
    repeated = sorted({d for d in dtypes if dtypes.count(d) > 1})
    if repeated:
        raise _Bad(f"{setting.source}: each dtype at most once, {', '.join(repeated)} repeated in {setting.value!r}")
    return dtypes


def _check_device(setting: _Setting | None) -> str:
    if setting is None:
        return "cpu"
    import torch

    try:
        torch.empty(1, device=torch.device(setting.value))
    except Exception as exc:  # noqa: BLE001 - an unparsable or unavailable device
        first = f"{type(exc).__name__}: {exc}".splitlines()[0]
        raise _Bad(f"{setting.source}: {setting.value!r} must be a torch device tensors can be created on "
                   f"({first})") from None
    return setting.value


def _positive_int(setting: _Setting) -> int:
    if not (setting.value.isascii() and setting.value.isdigit()) or int(setting.value) < 1:
        raise _Bad(f"{setting.source}: must be a positive integer, got {setting.value!r}")
    return int(setting.value)


def _examples(config: pytest.Config, setting: _Setting | None, profile_examples: dict) -> tuple[int, str]:
    """Examples per property and where the count came from (see the module docstring)."""
    if setting is not None:
        return _positive_int(setting), setting.source
    from hypothesis import settings

    if hasattr(settings, "get_current_profile_name"):
        name = settings.get_current_profile_name()
    else:  # Hypothesis releases before the public accessor keep the name in this attribute
        name = getattr(settings, "_current_profile", None) or "default"
    base = name.split("-with-")[0]     # the Hypothesis plugin's '<profile>-with-<verbosity>-verbosity'
    if base in profile_examples:
        return profile_examples[base], f"Hypothesis profile {name!r}"
    if base != "default":
        return settings.default.max_examples, f"Hypothesis profile {name!r}"
    env = os.environ.get("LRNNSPEC_PROFILE", "").strip()
    if env:
        if env not in profile_examples:
            raise _Bad(f"LRNNSPEC_PROFILE: must be one of {', '.join(profile_examples)}, got {env!r}")
        return profile_examples[env], f"LRNNSPEC_PROFILE={env}"
    return profile_examples["ci"], "the ci profile's count"


def _seed(config: pytest.Config) -> int:
    value = config.getoption("hypothesis_seed", None)   # Hypothesis' --hypothesis-seed, when its plugin is on
    if value is None:
        return 0
    try:
        return int(value)
    except ValueError:
        raise _Bad(f"--hypothesis-seed: lrnnspec's tests need an integer seed, got {value!r}") from None


def _parse_xfails(setting: _Setting, ids: list[str]) -> dict[str, tuple[str, int, str]]:
    path = Path(setting.value).expanduser()
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise _Bad(f"{setting.source}: cannot read the xfails file {setting.value!r} "
                   f"({type(exc).__name__}: {exc})") from None
    known = set(ids)
    found: dict[str, tuple[str, int, str]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        entry, _, reason = line.partition("#")
        entry, reason = entry.strip(), reason.strip()
        if not entry:
            continue
        where = f"{setting.source} {setting.value}:{number}"
        if len(entry.split()) != 1:
            raise _Bad(f"{where}: one test id per line ('#' starts a comment), got {entry!r}")
        if entry not in known:
            raise _Bad(f"{where}: {entry!r} matches no lrnnspec test of this configuration; the ids are "
                       f"lrnnspec::<property>[<dtype>], here: {', '.join(ids)}")
        if entry in found:
            raise _Bad(f"{where}: {entry!r} is already listed on line {found[entry][1]}")
        found[entry] = (setting.value, number, reason)
    return found


# --- replay files ----------------------------------------------------------------------------------------
_TEMP_OUT: list[Path] = []


def _write_replay(setup: Setup, verdict) -> Path:
    """A one-verdict certificate in ``lrnnspec certify``'s format, for ``lrnnspec replay``."""
    import json
    import tempfile

    from lrnnspec import SPEC_VERSION
    from lrnnspec.harness import tolerance
    from lrnnspec.harness.certificate import Certificate, certificate_stem, kernel_identity

    if setup.out is not None:
        out = setup.out
    else:
        if not _TEMP_OUT:
            _TEMP_OUT.append(Path(tempfile.mkdtemp(prefix="lrnnspec-replay-")))
        out = _TEMP_OUT[0]
    out.mkdir(parents=True, exist_ok=True)
    cert = Certificate(kernel=kernel_identity(setup.target, setup.kernel.process.info), family=setup.family,
                       convention=setup.convention, dtypes=[verdict.dtype], device=setup.device,
                       environment=dict(setup.kernel.process.environment or {}), spec_version=SPEC_VERSION,
                       contracts={verdict.dtype: tolerance.CONTRACTS[verdict.dtype]},
                       tolerance=tolerance.constants(),
                       profile="pytest", seed=setup.seed, max_examples=setup.max_examples, verdicts=[verdict],
                       seconds=verdict.seconds)
    path = out / f"{certificate_stem(setup.family, setup.target)}-{verdict.property}-{verdict.dtype}.json"
    path.write_text(json.dumps(cert.to_json(), indent=1))
    return path
