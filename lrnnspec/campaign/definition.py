"""Campaign files: a declarative TOML description of a certification campaign, read into jobs.

::

    [campaign]                         # every key optional
    name = "nightly"
    profile = "ci"                     # dev | ci | certify
    dtypes = ["fp32", "bf16"]
    devices = ["cpu"]                  # torch devices: cpu, cuda, cuda:1
    seeds = [0]
    examples = 10                      # per property (default: the profile's)
    properties = ["forward", "final_state"]      # default: every property of the family's kind
    require = []                       # features that must be supported
    timeout = 60.0                     # seconds one kernel call may take
    database = "redis://db-host:6379/0"          # or a directory on a shared file system

    [[targets]]                        # built-in backends: every implementation they register
    backends = ["torch", "triton"]     # or the peers': fla-ref, fla, transformers, mlstm_kernels, mamba_ssm
    families = ["gated_delta_rule"]    # optional: only these families
    optional = true                    # a backend whose package is missing is skipped, and said so

    [[targets]]                        # a third-party kernel
    target = "my_pkg.ops:chunk_gdn"    # or "path/to/file.py:function" (relative to the campaign file)
    family = "gated_delta_rule"
    convention = "fla"                 # and contracts = {fp32 = "tf32"}, env, layout, rename

A ``[[targets]]`` entry may override ``dtypes``, ``devices``, ``seeds``, ``examples``, ``properties``,
``require``, ``timeout`` and set ``max_len``. A built-in implementation's budget (fewer examples,
shorter sequences, fewer dtypes where it runs slowly here) applies as in ``conformance``.

Each job is one target × one dtype × one device × one seed. Everything is checked before anything
runs: an unknown key, family, backend, dtype, property, feature or profile, a malformed target, a
job listed twice — one line naming the field (``targets[2].family``), exit 2; a device this machine
does not have, exit 3.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from lrnnspec.errors import CannotRun, UsageError

from .jobs import Job

CAMPAIGN_KEYS = {"name", "profile", "dtypes", "devices", "seeds", "examples", "properties", "require", "timeout",
                 "database", "max_len"}
OVERRIDES = {"dtypes", "devices", "seeds", "examples", "properties", "require", "timeout", "max_len"}
BUILTIN_KEYS = {"backends", "families", "optional"} | OVERRIDES
TARGET_KEYS = {"target", "family", "convention", "contracts", "env", "layout", "rename"} | OVERRIDES


@dataclass
class Campaign:
    name: str
    profile: str
    jobs: list[Job]
    database: str | None = None          # as the file gives it (the command line may override it)
    notes: list[str] = field(default_factory=list)     # backends skipped, budgets applied: said before it runs
    source: str = ""


def _list(value, where: str, kind=str) -> list:
    if isinstance(value, kind) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list) or not value:
        raise UsageError(where, f"must be a non-empty list of {kind.__name__}", value)
    for i, item in enumerate(value):
        if not isinstance(item, kind) or isinstance(item, bool):
            raise UsageError(f"{where}[{i}]", f"must be a {kind.__name__}", item)
    return value


def _positive_int(value, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UsageError(where, "must be a positive integer", value)
    return value


def _table(value, where: str) -> dict:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise UsageError(where, "must be a table of strings (key = \"value\")", value)
    return dict(value)


def _settings(table: dict, base: dict, where: str) -> dict:
    """The overridable settings of ``table`` over ``base``, each checked."""
    from lrnnspec.harness.kernel import TORCH_DTYPES

    s = dict(base)
    if "dtypes" in table:
        s["dtypes"] = _list(table["dtypes"], f"{where}.dtypes")
        for i, d in enumerate(s["dtypes"]):
            if d not in TORCH_DTYPES:
                raise UsageError(f"{where}.dtypes[{i}]", f"unknown dtype; known: {', '.join(TORCH_DTYPES)}", d)
    if "devices" in table:
        s["devices"] = _list(table["devices"], f"{where}.devices")
        for i, d in enumerate(s["devices"]):
            s["devices"][i] = _device(d, f"{where}.devices[{i}]")
    if "seeds" in table:
        s["seeds"] = _list(table["seeds"], f"{where}.seeds", int)
    if "examples" in table:
        s["examples"] = _positive_int(table["examples"], f"{where}.examples")
    if "max_len" in table:
        s["max_len"] = _positive_int(table["max_len"], f"{where}.max_len")
    if "properties" in table:
        s["properties"] = tuple(_list(table["properties"], f"{where}.properties"))
        s["properties_at"] = f"{where}.properties"
    if "require" in table:
        req = table["require"]
        s["require"] = tuple([] if req == [] else _list(req, f"{where}.require"))
        s["require_at"] = f"{where}.require"
    if "timeout" in table:
        t = table["timeout"]
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not t > 0:
            raise UsageError(f"{where}.timeout", "must be a positive number of seconds", t)
        s["timeout"] = float(t)
    return s


def _device(value: str, where: str) -> str:
    import torch

    try:
        device = torch.device(value)
    except (RuntimeError, TypeError) as exc:
        raise UsageError(where, f"must be a torch device (cpu, cuda, cuda:1): {exc}", value) from None
    return str(device) if device.index is not None else device.type


def check_devices(jobs: list[Job], *, local: bool) -> None:
    """A CUDA job needs CUDA here when the jobs run here (a cluster's GPUs are the cluster's)."""
    import torch

    if local and any(j.device.startswith("cuda") for j in jobs) and not torch.cuda.is_available():
        where = next(j for j in jobs if j.device.startswith("cuda"))
        raise CannotRun("devices", f"{where.device}: no CUDA device is available here (torch {torch.__version__}, "
                                   f"built with CUDA {torch.version.cuda or 'none'}); --executor ray runs it on a "
                                   f"cluster node that has one", where.device)


def _check_family_settings(fam, s: dict, where: str) -> None:
    from lrnnspec.harness.certificate import features
    from lrnnspec.harness.dag import PROPERTIES as DAG
    from lrnnspec.harness.sequence import PROPERTIES as SEQUENCE

    known = SEQUENCE if fam.kind == "sequence" else DAG
    for i, p in enumerate(s.get("properties") or ()):
        if p not in known:
            raise UsageError(f"{s['properties_at']}[{i}]", f"unknown property of {fam.name!r} ({fam.kind} family); "
                                                          f"known: {', '.join(known)}", p)
    feats = features(fam)
    for i, f in enumerate(s.get("require") or ()):
        if f not in feats:
            raise UsageError(f"{s['require_at']}[{i}]", f"unknown feature of {fam.name!r}; known: {', '.join(feats)}",
                             f)
    if s.get("max_len") is not None and fam.kind != "sequence":
        raise UsageError(f"{where}.max_len", f"applies to sequence families; {fam.name!r} is a {fam.kind} family",
                         s["max_len"])


def stem_for(family: str, target: str, dtypes, device: str, seed: int, *, seeds: int = 1) -> str:
    """A job's certificate name: ``<family>-<target>.<dtype>[.<device>][.seed<S>]`` (the device
    when it is not the CPU, the seed when the campaign runs several)."""
    from lrnnspec.harness.certificate import certificate_stem

    stem = f"{certificate_stem(family, target)}.{'-'.join(dtypes)}"
    if device != "cpu":
        stem += "." + device.replace(":", "")
    return stem + (f".seed{seed}" if seeds > 1 else "")


def label_for(family: str, target: str, dtypes, device: str, seed: int) -> str:
    return f"{family} {target.rpartition(':')[2]} [{','.join(dtypes)}] {device} seed {seed}"


def load(path: "str | os.PathLike") -> Campaign:
    """Read and check the campaign file at ``path`` (see the module docstring)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise UsageError("CAMPAIGN", f"cannot read the campaign file: {exc.strerror or exc}", str(path)) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError("CAMPAIGN", f"{path}: not valid TOML: {exc}") from None
    return parse(data, base_dir=path.resolve().parent, source=str(path))


def parse(data: dict, *, base_dir: Path | None = None, source: str = "") -> Campaign:
    from lrnnspec import PROFILE_EXAMPLES
    from lrnnspec.harness.targets import TargetError, check_target
    from lrnnspec.impls.registry import BACKENDS, backend_available, implementations
    from lrnnspec.spec import all_families, get_family

    unknown = set(data) - {"campaign", "targets"}
    if unknown:
        raise UsageError(sorted(unknown)[0], "unknown section; a campaign file has [campaign] and [[targets]]")
    head = data.get("campaign", {})
    if not isinstance(head, dict):
        raise UsageError("campaign", "must be a table ([campaign])", head)
    for key in head:
        if key not in CAMPAIGN_KEYS:
            raise UsageError(f"campaign.{key}", f"unknown field; known: {', '.join(sorted(CAMPAIGN_KEYS))}")
    profile = head.get("profile", "ci")
    if profile not in PROFILE_EXAMPLES:
        raise UsageError("campaign.profile", f"must be one of {', '.join(PROFILE_EXAMPLES)}", profile)
    name = head.get("name", Path(source).stem if source else "campaign")
    if not isinstance(name, str) or not name:
        raise UsageError("campaign.name", "must be a non-empty string", name)
    base = _settings(head, {"dtypes": ["fp32"], "devices": ["cpu"], "seeds": [0], "examples": None,
                            "properties": None, "require": (), "timeout": 60.0, "max_len": None}, "campaign")
    db = head.get("database")
    if db is not None and (not isinstance(db, str) or not db):
        raise UsageError("campaign.database", "must be a directory or redis://HOST:PORT/N", db)
    targets = data.get("targets")
    if not isinstance(targets, list) or not targets:
        raise UsageError("targets", "a campaign names at least one [[targets]] entry")
    families = {f.name for f in all_families()}
    jobs: list[Job] = []
    seen: dict[tuple, str] = {}
    notes: list[str] = []
    for n, entry in enumerate(targets):
        where = f"targets[{n}]"
        if not isinstance(entry, dict):
            raise UsageError(where, "must be a table ([[targets]])", entry)
        builtin = "backends" in entry
        if builtin == ("target" in entry):
            raise UsageError(where, "names either backends = [...] (built-in implementations) or target = "
                                    "\"module:function\" with its family, not both and not neither")
        allowed = BUILTIN_KEYS if builtin else TARGET_KEYS
        for key in entry:
            if key not in allowed:
                raise UsageError(f"{where}.{key}", f"unknown field for this kind of entry; known: "
                                                   f"{', '.join(sorted(allowed))}")
        s = _settings(entry, base, where)
        if builtin:
            backends = _list(entry["backends"], f"{where}.backends")
            for i, b in enumerate(backends):
                if b not in BACKENDS:
                    raise UsageError(f"{where}.backends[{i}]", f"unknown backend; known: {', '.join(BACKENDS)}", b)
            wanted = None
            if "families" in entry:
                wanted = _list(entry["families"], f"{where}.families")
                for i, f in enumerate(wanted):
                    if f not in families:
                        raise UsageError(f"{where}.families[{i}]", f"unknown family; known: "
                                                                   f"{', '.join(sorted(families))}", f)
            optional = entry.get("optional", False)
            if not isinstance(optional, bool):
                raise UsageError(f"{where}.optional", "must be true or false", optional)
            impls = []
            for b in backends:
                if not backend_available(b):
                    if optional:
                        notes.append(f"skipping backend {b!r} ({where}): its package is not installed")
                        continue
                try:
                    found = implementations(None, backends=(b,), kinds=("sequence", "dag"), device=s["devices"][0])
                except ValueError as exc:
                    raise CannotRun(f"{where}.backends", str(exc).removeprefix("backends: "), b) from None
                impls += [i for i in found if wanted is None or i.family in wanted]
            for impl in impls:
                fam = get_family(impl.family)
                _check_family_settings(fam, s, where)
                dtypes = [d for d in s["dtypes"] if d in impl.budget.get("dtypes", s["dtypes"])]
                for d in s["dtypes"]:
                    if d not in dtypes:
                        notes.append(f"{impl.target} [{d}]: not run, outside its budget here (dtypes "
                                     f"{', '.join(impl.budget['dtypes'])})")
                examples = s["examples"]
                if impl.budget.get("examples") is not None:
                    examples = min(examples or impl.budget["examples"], impl.budget["examples"])
                max_len = s["max_len"] if s["max_len"] is not None else impl.budget.get("max_len")
                for device in s["devices"]:
                    env = impl.env
                    for dtype in dtypes:
                        for seed in s["seeds"]:
                            jobs.append(_job(impl.target, impl.family, (dtype,), device, seed, profile, examples, s,
                                             convention=impl.convention, contracts=impl.contracts, env=env,
                                             max_len=max_len))
                            _unique(jobs[-1], where, seen)
        else:
            target = entry["target"]
            if not isinstance(target, str) or not target:
                raise UsageError(f"{where}.target", "must be 'package.module:function' or 'path/to/file.py:function'",
                                 target)
            module = target.rpartition(":")[0]
            if (module.endswith(".py") or "/" in module) and base_dir is not None and not Path(module).is_absolute():
                target = f"{base_dir / module}:{target.rpartition(':')[2]}"
            try:
                target = check_target(target)
            except TargetError as exc:
                raise UsageError(f"{where}.target", str(exc), entry["target"]) from None
            family = entry.get("family")
            if family not in families:
                raise UsageError(f"{where}.family", f"unknown family; known: {', '.join(sorted(families))}", family)
            fam = get_family(family)
            _check_family_settings(fam, s, where)
            options = {}
            for key in ("convention", "layout"):
                if key in entry:
                    if not isinstance(entry[key], str):
                        raise UsageError(f"{where}.{key}", "must be a string", entry[key])
                    options[key] = entry[key]
            for key in ("contracts", "env", "rename"):
                if key in entry:
                    options[key] = _table(entry[key], f"{where}.{key}")
            if "contracts" in options:
                from lrnnspec.harness.kernel import check_contracts
                from lrnnspec.spec.errors import SpecError

                try:
                    check_contracts(options["contracts"])
                except SpecError as exc:
                    raise UsageError(f"{where}.contracts", str(exc)) from None
            for device in s["devices"]:
                for dtype in s["dtypes"]:
                    for seed in s["seeds"]:
                        jobs.append(_job(target, family, (dtype,), device, seed, profile, s["examples"], s,
                                         max_len=s["max_len"], **options))
                        _unique(jobs[-1], where, seen)
    seeds = len({j.seed for j in jobs})
    jobs = [_restem(j, seeds) for j in jobs]
    if not jobs:
        raise UsageError("targets", "names no implementation that can run here (every backend was skipped)")
    return Campaign(name, profile, jobs, db, notes, source)


def _job(target, family, dtypes, device, seed, profile, examples, s, **options) -> Job:
    return Job(target=target, family=family, dtypes=tuple(dtypes), device=device, seed=seed, profile=profile,
               examples=examples, properties=s["properties"], require=tuple(s["require"]), timeout=s["timeout"],
               label=label_for(family, target, dtypes, device, seed), **options)


def _unique(job: Job, where: str, seen: dict) -> None:
    if job.key in seen:
        raise UsageError(where, f"duplicate job: {job.family} {job.target} [{job.dtypes[0]}] on {job.device} seed "
                                f"{job.seed} is already listed by {seen[job.key]}")
    seen[job.key] = where


def _restem(job: Job, seeds: int) -> Job:
    from dataclasses import replace

    return replace(job, stem=stem_for(job.family, job.target, job.dtypes, job.device, job.seed, seeds=seeds))
