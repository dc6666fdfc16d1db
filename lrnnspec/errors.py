"""lrnnspec's error contract: exit codes, one message format, errors that cross processes intact.

Every command ends with one of these exit codes (:data:`OK` … :data:`INTERRUPTED`); what 0 and 1
mean for a command is stated in its ``--help``:

====  ================================================================================
0     done; for certify / conformance / replay: certified, or nothing reproduced
1     not certified, a check failed, a counterexample reproduced
2     usage or bad input (an option, a file, a certificate, a target that cannot load)
3     could not run here (no CUDA, a missing dependency, the kernel's process died while
      loading, an error inside lrnnspec: its traceback is in a log file)
130   interrupted (Ctrl-C)
====  ================================================================================

Every error reaches the user as one line::

    lrnnspec <command>: error: <argument or JSON path>: <rule broken> (got …)

:class:`UsageError` (exit 2) and :class:`CannotRun` (exit 3) carry the argument and the rule;
:class:`Picklable` makes an exception whose ``__init__`` takes other arguments than ``args``
survive pickling (a process pool sends errors from its workers back by pickle: an exception that
cannot be rebuilt there turns into ``BrokenProcessPool`` and the real message is lost). Every
lrnnspec exception type inherits it.

This module imports nothing heavy: the command line reads it before torch is imported.
"""

from __future__ import annotations

OK, FAILED, USAGE, CANNOT_RUN, INTERRUPTED = 0, 1, 2, 3, 130
EXIT_CODES = {OK: "done / certified / nothing reproduced", FAILED: "not certified / a check failed / reproduced",
              USAGE: "usage error or bad input", CANNOT_RUN: "could not run here (or lrnnspec's own error)",
              INTERRUPTED: "interrupted"}


def _rebuild(cls, args, state):
    """Unpickle an exception without calling its ``__init__`` (whose signature may differ from ``args``)."""
    exc = cls.__new__(cls, *args)
    exc.args = args
    if state:
        exc.__dict__.update(state)
    return exc


class Picklable:
    """Mixin for exception types: pickled as (class, args, attributes), rebuilt without ``__init__``.
    Put it first among the bases: ``class MyError(Picklable, ValueError)``."""

    def __reduce__(self):
        return _rebuild, (type(self), tuple(self.args), dict(getattr(self, "__dict__", {}) or {}))


def shorten(value, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters (a very long or binary argument stays one line)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


class LrnnspecError(Picklable, Exception):
    """Base of the contract's errors: ``argument`` (an option, a positional, a JSON path) and the
    ``rule`` it broke; ``got`` (optional) the offending value, quoted in the message."""

    exit_code = USAGE

    def __init__(self, argument: str, rule: str, got=None, *, has_got: bool | None = None):
        self.argument, self.rule = argument, rule
        self.got = got
        self.has_got = got is not None if has_got is None else has_got
        super().__init__(self.line())

    def line(self) -> str:
        tail = f" (got {shorten(self.got)})" if self.has_got else ""
        return f"{self.argument}: {self.rule}{tail}"


class UsageError(LrnnspecError):
    """Bad input: exit 2."""

    exit_code = USAGE


class CannotRun(LrnnspecError):
    """The input is fine but this machine cannot do it (no CUDA, not enough memory, a dependency
    missing): exit 3."""

    exit_code = CANNOT_RUN


def message(command: str, text: str) -> str:
    """The one line: ``lrnnspec <command>: error: <text>``."""
    return f"lrnnspec {command}: error: {' '.join(str(text).split())}" if command else \
        f"lrnnspec: error: {' '.join(str(text).split())}"
