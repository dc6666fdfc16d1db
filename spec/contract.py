"""Precision contracts: where a sequential evaluation rounds, and to which format.

A contract names five formats:

``input``       every input (q, k, v, gates, β, static parameters) is rounded to it once, first;
``operand``     both factors of every inner product (``dot``) are rounded to it (TF32 / bf16 MMA inputs);
``accumulate``  the result of every arithmetic operation — each product, each partial sum of an inner
                product (summed left to right), each exp — is rounded to it;
``state``       the recurrent state is rounded to it whenever a step writes it (and the initial state);
``output``      every output element is rounded to it at the end.

Round-to-nearest-even is applied after every operation; nothing is fused (no FMA). Transcendental
functions are evaluated in float64 and then rounded, which is the correctly rounded result except in
rare hard cases of float64 libm (documented limitation; irrelevant for formats of ≤ 24 bits in practice).

Presets by name: ``fp64 fp32 fp16 bf16 fp8_e4m3 fp8_e5m2`` put *every* slot in that format (the
finite-precision model of the expressivity theorems); ``tf32`` is fp32 with TF32 dot operands (TF32 is
only ever an MMA input format); ``mixed-bf16`` / ``mixed-fp16`` are the usual kernel contract: inputs,
dot operands and outputs in the low format, accumulation and state in fp32. Any contract can be
written explicitly: ``"input=bf16,operand=bf16,accumulate=fp32,state=fp32,output=bf16"``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from .errors import EngineError
from .formats import FORMATS, Format, get_format

SLOTS = ("input", "operand", "accumulate", "state", "output")


@dataclass(frozen=True)
class PrecisionContract:
    input: Format
    operand: Format
    accumulate: Format
    state: Format
    output: Format

    @classmethod
    def uniform(cls, fmt: str | Format) -> "PrecisionContract":
        f = get_format(fmt, "contract")
        return cls(f, f, f, f, f)

    @classmethod
    def mixed(cls, low: str | Format, high: str | Format = "fp32") -> "PrecisionContract":
        lo, hi = get_format(low, "contract"), get_format(high, "contract")
        return cls(input=lo, operand=lo, accumulate=hi, state=hi, output=lo)

    @classmethod
    def parse(cls, text: "str | PrecisionContract") -> "PrecisionContract":
        """Parse a preset name or ``slot=format,...`` (unnamed slots default to fp32)."""
        if isinstance(text, PrecisionContract):
            return text
        if not isinstance(text, str) or not text.strip():
            raise EngineError("contract", f"expected a preset name or 'slot=format,...', got {text!r}")
        text = text.strip().lower()
        if "=" not in text:
            if text == "tf32":
                fp32 = FORMATS["fp32"]
                return cls(fp32, FORMATS["tf32"], fp32, fp32, fp32)
            if text.startswith("mixed-"):
                return cls.mixed(text[len("mixed-"):])
            return cls.uniform(text)
        chosen = dict.fromkeys(SLOTS, "fp32")
        for part in text.split(","):
            slot, sep, fmt = (s.strip() for s in part.partition("="))
            if not sep or slot not in SLOTS:
                raise EngineError("contract", f"{part!r} is not 'slot=format' with slot in {SLOTS}")
            chosen[slot] = fmt
        return cls(**{s: get_format(f, f"contract.{s}") for s, f in chosen.items()})

    @property
    def name(self) -> str:
        names = [getattr(self, s).name for s in SLOTS]
        if len(set(names)) == 1:
            return names[0]
        return ",".join(f"{s}={n}" for s, n in zip(SLOTS, names))

    def to_dict(self) -> dict[str, str]:
        return {f.name: getattr(self, f.name).name for f in fields(self)}
