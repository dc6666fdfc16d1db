"""Errors raised by the spec. Every message names the offending argument and the rule it broke."""

from __future__ import annotations

from lrnnspec.errors import Picklable  # survives pickling: errors cross process pools intact


class SpecError(Picklable, ValueError):
    """Base class: an input, option or request the spec cannot accept.

    ``argument`` is the name of the offending argument (``"k"``, ``"cu_seqlens"``, ``"engine"``...).
    """

    def __init__(self, argument: str, message: str):
        self.argument = argument
        super().__init__(f"{argument}: {message}")


class UnknownFamilyError(SpecError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


class ShapeError(SpecError):
    """Wrong rank, a dimension that disagrees with another input, or mismatched heads."""


class DomainError(SpecError):
    """A value outside the declared domain: a positive log-gate, beta outside its range,
    non-unit keys where the family requires them."""


class NonFiniteError(DomainError):
    """NaN or infinity in an input."""


class VarlenError(SpecError):
    """Inconsistent ``cu_seqlens`` (not int64, not increasing, not ending at T, B > 1...)."""


class OptionError(SpecError):
    """An unknown option or an option value outside its allowed set."""


class EngineError(SpecError):
    """An unknown engine, precision contract or format name, or an unusable precision."""
