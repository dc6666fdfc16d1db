"""Helpers of the command-line contract tests: ``run`` — the command as a user runs it (a subprocess of
the installed ``lrnnspec``, from a directory outside the checkout) — and the stored certificate."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path


HERE = Path(__file__).parent
REPO = HERE.parent.parent
PLANTED = REPO / "tests" / "certifier" / "planted.py"
CERT = HERE / "data" / "planted_forward.json"   # a real certificate: the planted scale bug, forward failing
LRNNSPEC = shutil.which("lrnnspec") or f"{sys.executable} -m lrnnspec"


def planted_certificate() -> dict:
    """The stored certificate with its target pointing at this checkout's planted.py."""
    data = json.loads(CERT.read_text())
    data["kernel"]["target"] = f"{PLANTED}:chunk_simple_gla_scale_ignored"
    data["kernel"]["directory"] = str(REPO)
    return data


def _mutated(data: dict, path: tuple, value=..., delete: bool = False) -> dict:
    out = copy.deepcopy(data)
    node = out
    for key in path[:-1]:
        node = node[key]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return out


def run(argv: list[str], cwd, timeout: float = 240, env: dict | None = None) -> subprocess.CompletedProcess:
    """``lrnnspec *argv`` as a user runs it; unexpected-error logs go under ``cwd``'s parent."""
    environ = dict(os.environ, LRNNSPEC_LOG_DIR=str(Path(cwd).parent / "lrnnspec-logs"), COLUMNS="200",
                   **(env or {}))
    environ.pop("LRNNSPEC_DEBUG", None)
    command = LRNNSPEC.split() if " " in LRNNSPEC else [LRNNSPEC]
    return subprocess.run(command + list(argv), capture_output=True, text=True, cwd=cwd, timeout=timeout, env=environ)
