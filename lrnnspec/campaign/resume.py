"""``--resume``: which jobs of an interrupted campaign are already done.

The driver keeps ``<certificates>/campaign.state`` (rewritten atomically after each job): per
certificate file, the settings of the job that wrote it. A job is skipped when

- its certificate (``<stem>.json``) exists and reads as one (a half-written file never exists:
  every write is a temporary file and one rename);
- the state records it with exactly this job's settings (target, family, convention, dtypes,
  device, seed, profile, examples, properties, required features, timeout, contracts, variables,
  lengths, layout, renames) and this lrnnspec version;
- the kernel's source is unchanged: the sha256 over its package's files, read from disk here, equals
  the certificate's;
- the spec version is this one;
- the environment matches: the certificate's versions (Python, torch, its CUDA, Triton, NumPy,
  machine) equal this machine's where both record them, and the job's variables are the ones the
  kernel ran with. On a cluster this machine's environment stands for the nodes': a uniform
  cluster is assumed (``lrnnspec replay`` lists the differences when one is not).

Anything else reruns, and the reason is said.
"""

from __future__ import annotations

import importlib.machinery
import json
import sys
from dataclasses import asdict, fields
from pathlib import Path

from lrnnspec.atomic import write_text

from .jobs import Job

STATE = "campaign.state"
COMPARED_ENVIRONMENT = ("python", "machine", "torch", "torch_cuda", "triton", "numpy")


def settings(job: Job) -> dict:
    """What a job's certificate depends on (not where its example database lives, nor its label)."""
    from lrnnspec import __version__

    d = asdict(job)
    for key in ("database", "label", "stem"):
        d.pop(key)
    d["dtypes"] = list(d["dtypes"])
    d["properties"] = None if d["properties"] is None else list(d["properties"])
    d["require"] = list(d["require"])
    d["lrnnspec"] = __version__
    return json.loads(json.dumps(d))


def read_state(certs_dir: Path) -> dict:
    try:
        data = json.loads((certs_dir / STATE).read_text())
    except (OSError, ValueError):
        return {}
    return data.get("jobs", {}) if isinstance(data, dict) else {}


def write_state(certs_dir: Path, state: dict) -> None:
    write_text(certs_dir / STATE, json.dumps({"version": 1, "jobs": state}, indent=1, sort_keys=True))


def certificate_from_json(data: dict):
    """A :class:`~lrnnspec.harness.certificate.Certificate` back from its JSON (fields it does not know
    are left out)."""
    from lrnnspec.harness.certificate import Certificate
    from lrnnspec.harness.verdicts import Verdict

    if hasattr(Certificate, "from_json"):          # validated against the certificate's schema
        return Certificate.from_json(data)
    vnames = {f.name for f in fields(Verdict)}
    cnames = {f.name for f in fields(Certificate)}
    d = {k: v for k, v in data.items() if k in cnames}
    d["verdicts"] = [Verdict(**{k: v for k, v in x.items() if k in vnames}) for x in data.get("verdicts", [])]
    return Certificate(**d)


def _locate(module: str) -> dict | None:
    """Where ``module``'s file is, without importing anything that is not imported already."""
    parts = module.split(".")
    locations = None
    spec_file, is_package = None, False
    for i in range(len(parts)):
        name = ".".join(parts[: i + 1])
        loaded = sys.modules.get(name)
        if loaded is not None and getattr(loaded, "__file__", None):
            spec_file = loaded.__file__
            locations = list(getattr(loaded, "__path__", []) or []) or None
            is_package = locations is not None
            continue
        spec = importlib.machinery.PathFinder.find_spec(name, locations)
        if spec is None or not spec.origin or spec.origin in ("built-in", "frozen"):
            return None
        spec_file, locations = spec.origin, spec.submodule_search_locations
        is_package = locations is not None
        locations = list(locations) if locations is not None else None
    return {"module": module, "file": spec_file, "is_package": is_package}


def source_sha256(cert: dict) -> str | None:
    """The sha256 of the certified kernel's source as it is on disk now (None: not readable here)."""
    from lrnnspec.harness.certificate import kernel_identity

    kernel = cert.get("kernel") or {}
    target, function = kernel.get("target", ""), kernel.get("function", "")
    module = function.rpartition(":")[0]
    file_part = target.rpartition(":")[0]
    if module.startswith("_lrnnspec_target_") and (file_part.endswith(".py") or "/" in file_part):
        info = {"module": module, "file": file_part, "is_package": False}
    elif module:
        info = _locate(module)
        if info is None:
            return None
    else:
        return None
    identity = kernel_identity(target, info)
    return None if identity["sha256"] == "unavailable" else identity["sha256"]


def here_environment(device: str) -> dict:
    from lrnnspec.harness.worker import environment

    return environment(device)


def done(job: Job, certs_dir: Path, state: dict, environments: dict) -> tuple[bool, str]:
    """(True, why) when ``job``'s certificate stands (see the module docstring); (False, why not)."""
    from lrnnspec import SPEC_VERSION

    path = certs_dir / f"{job.stem}.json"
    recorded = state.get(job.stem)
    if recorded is None:
        return False, "no finished run recorded"
    try:
        cert = json.loads(path.read_text())
    except OSError:
        return False, "its certificate is missing"
    except ValueError:
        return False, "its certificate does not read as JSON"
    if recorded.get("settings") != settings(job):
        changed = sorted(k for k in set(settings(job)) | set(recorded.get("settings") or {})
                         if (recorded.get("settings") or {}).get(k) != settings(job).get(k))
        return False, f"its settings changed ({', '.join(changed)})"
    if cert.get("spec_version") != SPEC_VERSION:
        return False, f"spec version {cert.get('spec_version')} in the certificate, {SPEC_VERSION} here"
    sha = source_sha256(cert)
    if sha is None:
        return False, "the kernel's source cannot be read here to compare its sha256"
    if sha != (cert.get("kernel") or {}).get("sha256"):
        return False, "the kernel's source changed (sha256 differs)"
    if job.device not in environments:
        environments[job.device] = here_environment(job.device)
    here, then = environments[job.device], cert.get("environment") or {}
    for key in COMPARED_ENVIRONMENT:
        if key in here and key in then and here[key] != then[key]:
            return False, f"the environment changed ({key} {then[key]} in the certificate, {here[key]} here)"
    variables = then.get("variables") or {}
    for key, value in job.env.items():
        if variables.get(key) != value:
            return False, f"the kernel's variable {key} differs"
    return True, "certificate present for the same kernel sha256, spec version, settings and environment"
