"""The ``lrnnspec`` command line.

Exit codes (every command): 0 done / certified, 1 not certified or a check failed, 2 usage error or
bad input, 3 could not run here (or an error inside lrnnspec: one line names the log file holding
its traceback; --debug prints it), 130 interrupted. Each command's --help says what its 0 and 1 mean.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
import time
import traceback

from . import errors
from .commands import COMMANDS

DEBUG_HELP = "print the traceback of an unexpected error instead of writing it to a log file (or LRNNSPEC_DEBUG=1)"


class Parser(argparse.ArgumentParser):
    """argparse with the contract's one-line errors: ``lrnnspec <command>: error: --option: rule``
    (no usage block; ``--help`` shows it), exit 2."""

    def error(self, message):  # noqa: D401 - argparse's hook
        message = re.sub(r"^argument ([^:]+): ", lambda m: m.group(1).split("/")[-1] + ": ", message)
        message = re.sub(r"'([^']{80})[^']+'", r"'\1…'", message)      # a very long value, quoted: cut
        sys.stderr.write(errors.message(self.prog.removeprefix("lrnnspec").strip(), message) + "\n")
        raise SystemExit(errors.USAGE)


def _leaves(parser: argparse.ArgumentParser):
    """Every parser that runs a command (the leaves of the subcommand tree)."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield parser
        return
    for action in subs:
        for child in dict.fromkeys(action.choices.values()):
            yield from _leaves(child)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="lrnnspec", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true", default=False, help=DEBUG_HELP)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"lrnnspec.commands.{name}").register(sub)
    for leaf in _leaves(parser):
        if leaf is not parser:
            leaf.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
    return parser


def command_name(args) -> str:
    """``certify``, ``spec eval``, ``report expressivity`` … (the words the user typed)."""
    words = [getattr(args, "command", None)]
    for key in ("spec_command", "report_kind", "peers_command"):
        words.append(getattr(args, key, None))
    return " ".join(w for w in words if w)


def _log_unexpected(command: str, argv) -> str:
    folder = os.environ.get("LRNNSPEC_LOG_DIR") or os.path.join(__import__("tempfile").gettempdir(), "lrnnspec-logs")
    try:
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, f"{command.replace(' ', '-') or 'lrnnspec'}-{time.strftime('%Y%m%d-%H%M%S')}-"
                                    f"{os.getpid()}.log")
        with open(path, "w") as fh:
            fh.write(f"lrnnspec {' '.join(argv)}\n\n{traceback.format_exc()}")
        return path
    except OSError:
        return ""


def _interrupted(args) -> str:
    out = getattr(args, "out", None)
    if not out:
        return "interrupted; nothing was written"
    if getattr(args, "command", None) == "certify":
        if not os.path.exists(os.path.join(out, "progress.jsonl")):
            return f"interrupted before any property finished; no certificate was written in {out}"
        return (f"interrupted; the properties finished so far are in {out}/progress.jsonl (tagged with this run's "
                f"id); the certificate is written only when a run completes")
    if getattr(args, "command", None) == "train":
        return f"interrupted; {out} was not written"
    return f"interrupted; what was finished is in {out} (files there are written whole or not at all)"


def _classify(exc: BaseException) -> tuple[int, str] | None:
    """The exit code and the line for lrnnspec's own error types (None: unexpected)."""
    if isinstance(exc, errors.LrnnspecError):
        return exc.exit_code, exc.line()
    if type(exc).__name__ == "OutOfMemoryError" or "can't allocate memory" in str(exc):
        return errors.CANNOT_RUN, "out of memory: this run does not fit in this machine's memory (use smaller sizes)"
    from lrnnspec.spec.errors import SpecError

    if isinstance(exc, SpecError):
        return errors.USAGE, str(exc)
    try:
        from lrnnspec.harness.process import KernelDied, LoadError
        from lrnnspec.harness.targets import TargetError
    except ImportError:  # pragma: no cover - the harness needs torch
        return None
    if isinstance(exc, TargetError):
        return errors.USAGE, f"TARGET: {exc}"
    if isinstance(exc, LoadError):
        return errors.USAGE, f"TARGET: cannot load it: {exc}"
    if isinstance(exc, KernelDied):
        return errors.CANNOT_RUN, f"TARGET: the kernel's process failed while loading it: {exc}"
    return None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = argparse.Namespace()
    command = next((w for w in argv if w in COMMANDS), "")
    debug = "--debug" in argv or os.environ.get("LRNNSPEC_DEBUG", "") not in ("", "0")
    try:
        parser = build_parser()
        try:
            args, extra = parser.parse_known_args(argv)
        except SystemExit as exc:           # --help (0) or a usage error (2, its line already printed)
            return exc.code if isinstance(exc.code, int) else errors.USAGE
        command = command_name(args)
        if extra:
            print(errors.message(command, f"unrecognized arguments: {errors.shorten(' '.join(extra), 200)}"),
                  file=sys.stderr)
            return errors.USAGE
        debug = debug or args.debug
        validate = getattr(args, "validate", None)
        if validate is not None and (problem := validate(args)):
            print(errors.message(command, problem), file=sys.stderr)
            return errors.USAGE
        try:
            return args.func(args)
        finally:                             # one run per --out: the directory is free again
            lock = getattr(args, "out_lock", None)
            if lock is not None:
                lock.release()
    except KeyboardInterrupt:
        print(f"\nlrnnspec {command}: {_interrupted(args)}", file=sys.stderr)
        return errors.INTERRUPTED
    except SystemExit:
        raise
    except BrokenPipeError:                  # stdout closed early (| head): nothing more to say
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return errors.OK
    except MemoryError:
        print(errors.message(command, "out of memory: this run does not fit in this machine's memory (use smaller "
                                      "sizes)"), file=sys.stderr)
        return errors.CANNOT_RUN
    except Exception as exc:  # noqa: BLE001 - the contract's one handler
        known = _classify(exc)
        if known is not None:
            print(errors.message(command, known[1]), file=sys.stderr)
            return known[0]
        if debug:
            traceback.print_exc()
            print(errors.message(command, f"unexpected {type(exc).__name__} inside lrnnspec (traceback above)"),
                  file=sys.stderr)
            return errors.CANNOT_RUN
        path = _log_unexpected(command, argv)
        where = f"its traceback is in {path}" if path else "no log file could be written"
        print(errors.message(command, f"unexpected {type(exc).__name__} inside lrnnspec: "
                                      f"{str(exc)[:200]}; {where} (rerun with --debug to print "
                                      f"it; please report it)"), file=sys.stderr)
        return errors.CANNOT_RUN


if __name__ == "__main__":
    sys.exit(main())
