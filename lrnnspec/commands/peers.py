"""``lrnnspec peers list`` and ``lrnnspec peers install NAME``: the field's packages as conformance
backends — which are installed here, and the one that needs a recipe to install without a GPU.

mamba_ssm's setup.py downloads a prebuilt CUDA wheel or compiles its extension; on a machine without
CUDA both fail. ``MAMBA_SKIP_CUDA_BUILD=TRUE MAMBA_FORCE_BUILD=TRUE`` with ``--no-build-isolation
--no-deps`` installs the Python package alone; its pure-PyTorch references then run (the backend
marks the missing ``selective_scan_cuda`` extension absent in the kernel's process).
"""

from __future__ import annotations

import os
import subprocess
import sys

# name → (pip arguments, variables): recipes for peers that `pip install '.[peers]'` cannot install
RECIPES = {
    "mamba_ssm": (["--no-build-isolation", "--no-deps", "mamba-ssm==2.3.2.post1"],
                  {"MAMBA_SKIP_CUDA_BUILD": "TRUE", "MAMBA_FORCE_BUILD": "TRUE"}),
}


def _list(args) -> int:  # noqa: ARG001 - the parsed arguments carry nothing for list
    from lrnnspec.impls.registry import backend_available
    from lrnnspec.peers.backends import PEER_BACKENDS, version_of

    for name, backend in PEER_BACKENDS.items():
        installed = backend_available(name)
        state = f"{backend.distribution} {version_of(name)}" if installed else f"not installed — {backend.install}"
        print(f"{name}: {backend.description} [{state}]")
        for fn in backend.functions:
            print(f"    {fn.family:<18} {fn.form:<10} {fn.target}{'  (Triton)' if fn.triton else ''}")
    return 0


def _install(args) -> int:
    pip_args, variables = RECIPES[args.name]
    command = [sys.executable, "-m", "pip", "install", *pip_args]
    print(f"{' '.join(f'{k}={v}' for k, v in variables.items())} {' '.join(command)}", file=sys.stderr)
    return subprocess.call(command, env={**os.environ, **variables})


def register(sub) -> None:
    p = sub.add_parser("peers", help="the field's packages as conformance backends: list them, install one")
    peers_sub = p.add_subparsers(dest="peers_command", required=True, metavar="SUBCOMMAND")
    lst = peers_sub.add_parser("list", help="every peer backend, its functions, and whether it is installed here")
    lst.set_defaults(func=_list)
    inst = peers_sub.add_parser("install", help="install a peer that needs a recipe on a machine without CUDA")
    inst.add_argument("name", choices=sorted(RECIPES))
    inst.set_defaults(func=_install)
