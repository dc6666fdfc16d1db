"""The ``lrnnspec`` command line. Exit codes: 0 success, 1 a check failed, 2 usage or import error."""

from __future__ import annotations

import argparse
import importlib
import sys

from .commands import COMMANDS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lrnnspec", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"lrnnspec.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from lrnnspec.spec import SpecError

    parser = build_parser()
    args = parser.parse_args(argv)
    validate = getattr(args, "validate", None)
    if validate is not None and (problem := validate(args)):
        parser.error(problem)
    try:
        return args.func(args)
    except SpecError as exc:
        print(f"lrnnspec: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
