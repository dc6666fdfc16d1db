"""Capability negotiation: what a kernel supports, probed before any property runs.

A certificate means "correct within this scope". Before the properties, each optional feature is
probed with the smallest input that uses it — grouped value heads, a value width V other than the
key width K, ``cu_seqlens`` (and empty
segments), an initial state, a final state, ``scale``, ``chunk_size``, T = 0, T not a multiple of
the kernel's chunk, backward, each optional input and option of the family. A feature the kernel
refuses cleanly and consistently — an exception at the call, on two different probes — is
**unsupported**: recorded with the kernel's message, excluded from the drawn cases, and the
properties that need it get the verdict ``unsupported``. A feature the signature does not name is
unsupported too (``**kwargs`` names nothing). A feature the kernel accepts must be right: an input
or option whose value does not change the output where the spec's output changes is **ignored**,
and the ``scope`` property fails saying so; so does a feature listed in ``--require`` that is
unsupported. A first call that fails because the machine cannot run the kernel (no GPU driver, no
CUDA, a missing library) stops the run: "could not run here", exit 3 — never a kernel failure.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from .verdicts import PropertyFailure

LABELS = {
    "grouped_value_heads": "grouped value heads",
    "distinct_value_dim": "V ≠ K",
    "varlen": "cu_seqlens",
    "empty_segments": "empty cu_seqlens segments",
    "initial_state": "initial state",
    "final_state": "final state",
    "scale": "scale",
    "chunk_size": "chunk_size",
    "empty_sequence": "T = 0",
    "backward": "backward",
}
# what a property needs beyond the plain forward call
NEEDS = {"final_state": ("final_state",), "state_passing": ("initial_state", "final_state"),
         "varlen": ("varlen",), "chunk_size": ("chunk_size",), "gradients": ("backward",)}
# a first call failing like this means the machine cannot run the kernel, not that the kernel is wrong
ENVIRONMENT = re.compile(r"active drivers|no NVIDIA driver|NVIDIA driver on your system|not compiled with CUDA|"
                         r"CUDA (is not available|driver version)|No CUDA GPUs|no kernel image is available|"
                         r"libcuda|cannot open shared object|No module named|ModuleNotFoundError|"
                         r"InterpreterError|"     # Triton's CPU interpreter cannot run the kernel (first call only)
                         r"needs a CUDA device")  # raised inside torch.cuda while certifying on the CPU (below)


@dataclass
class Scope:
    """``unsupported``: feature → why (the kernel's message, or "not in the signature");
    ``constraints``: rules on T the kernel declared by refusing (e.g. "T % 64 == 0");
    ``ignored``: accepted features whose value does not reach the output; ``required``: features
    the user asked to be supported; ``could_not_run``: why this machine cannot run the kernel;
    ``dtypes``: dtypes the kernel refuses (probed on their first property, see :func:`dtype_refusal`)."""

    supported: list[str] = field(default_factory=list)
    unsupported: dict[str, str] = field(default_factory=dict)
    constraints: list[str] = field(default_factory=list)
    ignored: dict[str, str] = field(default_factory=dict)
    required: list[str] = field(default_factory=list)
    multiple: int = 1
    could_not_run: str | None = None
    dtypes: dict[str, str] = field(default_factory=dict)

    def allows(self, feature: str) -> bool:
        return feature not in self.unsupported

    def allows_length(self, T: int) -> bool:
        return T % self.multiple == 0 and (T > 0 or self.allows("empty_sequence"))

    def missing(self, prop: str) -> str | None:
        """Why ``prop`` cannot run within this scope, or None."""
        lacking = [f for f in NEEDS.get(prop, ()) if not self.allows(f)]
        if not lacking:
            return None
        return "; ".join(f"{LABELS.get(f, f)} unsupported ({self.unsupported[f]})" for f in lacking)

    def line(self) -> str:
        """The scope in one line: the unsupported features and the constraints."""
        implied = ("partial_chunk",) if self.multiple > 1 else ()   # the constraint says it
        parts = [LABELS.get(f, f) for f in self.unsupported if f not in implied]
        parts += [c.replace("==", "≠") if c.startswith("T %") else c for c in self.constraints]
        parts += list(self.dtypes)
        return f"unsupported: {', '.join(parts)}" if parts else "every feature supported"

    def to_json(self) -> dict:
        return asdict(self)


def refusal(failure: PropertyFailure, device: str = "cpu") -> str | None:
    """The kernel's message when ``failure`` is a clean refusal (an exception at the call), else None.
    An exception raised inside ``torch.cuda`` while the kernel runs on the CPU (mamba_ssm's Triton ops
    enter ``torch.cuda.device(x.device.index)``, whose index is None for a CPU tensor) says so."""
    if failure.detail.get("kind") != "raised":
        return None
    message = str(failure).removeprefix("the kernel raised ")
    frames = re.findall(r'File "([^"]+)"', failure.detail.get("traceback", ""))
    if frames and "/torch/cuda/" in frames[-1].replace("\\", "/") and not device.startswith("cuda"):
        message += " (raised inside torch.cuda: the kernel needs a CUDA device)"
    return message


class Prober:
    """Runs the probes of one sequence domain (see the module docstring)."""

    def __init__(self, domain, required=()):
        self.dom, self.fam = domain, domain.fam
        self.scope = Scope(required=list(required))
        self.fatal = False
        self.seen: list[str] = []          # the features probed, in order
        self.dtype = "fp32"                # the probes' dtype: bf16 when the kernel refuses fp32

    # --- the probe inputs --------------------------------------------------------------------------
    def case(self, T: int, seed: int, **changes):
        from lrnnspec.spec.roles import get_role
        from lrnnspec.strategies import Case

        dims = {"B": 1, "T": T}
        for d in {d for i in self.fam.inputs for d in i.dims} - {"B", "T", "T*n_h"}:
            dims[d] = 2 if d in ("K", "V", "D", "NS") else 1
        if any(i.dims[1:2] == ("T*n_h",) for i in self.fam.inputs):
            dims["n_h"] = 1
        dims |= changes.pop("dims", {})
        optional = (*changes.pop("optional", ()), *self.dom.required_optional())
        regimes = {i.name: ("random" if i.name in self.fam.unit_keys else "uniform"
                            if get_role(i.role).regimes == "strength" else "typical"
                            if get_role(i.role).regimes == "gate" else "normal")
                   for i in self.fam.inputs if not i.optional or i.name in optional}
        fields = dict(options=self.dom.fixed_options()) | changes
        return Case(self.fam.name, dims, regimes, fields.pop("options"), seed, **fields).rounded(torch.float32)

    def call(self, case, **kw):
        """(result, None) or (None, the refusal message); a failure that is not a refusal (garbage,
        a death, a hang) counts as acceptance — the properties will report it — and stops probing
        after a death or a hang. Once the final state is known to be refused, no probe asks for it."""
        if not self.allows("final_state"):
            kw.setdefault("want_state", False)
        try:
            return self.dom.call(case, self.dtype, initial_state=kw.pop("initial_state", None), **kw), None
        except PropertyFailure as failure:
            message = refusal(failure, self.dom.k.device)
            if message is None:
                self.fatal = self.fatal or getattr(failure, "fatal", False)
                return None, None
            return None, message

    def refused(self, cases, **kw) -> str | None:
        """The message when every probe in ``cases`` is refused; None when any is accepted."""
        messages = []
        for case in cases:
            if self.fatal:
                return None
            _, message = self.call(case, **kw)
            if message is None:
                return None
            messages.append(message)
        return messages[0]

    # --- negotiation ---------------------------------------------------------------------------------
    def run(self) -> Scope:
        scope = self.scope
        _, message = self.call(self.case(2, 0))
        if message is not None and self.dom.caps.final_state and not self.fatal:
            # refused only because it was asked for its final state (mlstm_kernels' parallel forms assert
            # ``not return_last_states``): that is the feature it lacks, not every call at every length
            _, without = self.call(self.case(2, 0), want_state=False)
            if without is None and not self.fatal:
                self.seen.append("final_state")
                scope.unsupported["final_state"], message = message, None
        if message is not None and ENVIRONMENT.search(message):
            scope.could_not_run = message
            return scope
        if message is not None and not self.lengths() and not self.fatal:
            # refused at every length: fp32 itself, if bf16 is accepted (fla's chunk_delta_rule: "does not
            # support float32"); a kernel that refuses both refuses everything, and its properties fail
            self.dtype = "bf16"
            _, bf16 = self.call(self.case(2, 0))
            if bf16 is not None and ENVIRONMENT.search(bf16):
                scope.dtypes["fp32"] = message
                scope.could_not_run = f"{bf16} (in bf16; it refuses fp32: {message})"
                return scope
            if bf16 is not None:             # no dtype is refused more than another: none is "unsupported"
                from .kernel import TORCH_DTYPES

                self.dtype = "fp32"
                self.dom.dtypes_probed.update(TORCH_DTYPES)
                return scope
            scope.dtypes["fp32"] = message
            self.dom.dtypes_probed.add("bf16")
        if self.fatal:
            return scope
        t0 = max(scope.multiple, 2)
        plain = (self.case(t0, 1), self.case(2 * t0, 2))
        self.probe("empty_sequence", [self.case(0, 3)])
        fam_dims = {d for i in self.fam.inputs for d in i.dims}
        if {"H", "HV"} <= fam_dims:          # H = 2: with one key head, broadcasting hides a missing GVA
            gva = {"H": 2, "HV": 4}
            self.probe("grouped_value_heads", [self.case(t0, 4, dims=gva), self.case(2 * t0, 5, dims=gva)])
        if {"K", "V"} <= fam_dims:           # the plain probes have V = K = 2 (fla-core's mesa_net needs V = K)
            self.probe("distinct_value_dim", [self.case(t0, 6, dims={"V": 3}), self.case(2 * t0, 7, dims={"V": 3})])
        self.signature_feature("initial_state", self.dom.caps.initial_state,
                               [c.replace(initial_state="normal") for c in plain], initial_state="case")
        if self.allows("final_state"):
            self.signature_feature("final_state", self.dom.caps.final_state, plain, want_state=True)
        # segments of allowed lengths: t0 and the rest (a kernel that needs T % 64 == 0 needs it per segment)
        self.signature_feature("varlen", self.dom.caps.varlen,
                               [self.case(n * t0, 6 + n, segments=[0, t0, n * t0]) for n in (2, 3)])
        if self.allows("varlen"):
            self.probe("empty_segments", [c.replace(segments=[0, 0, c.dims["T"]]) for c in plain])
        self.signature_feature("chunk_size", self.dom.caps.chunk_size, plain, chunk_size=16)
        self.backward(plain[0])
        if any(o.name == "scale" for o in self.fam.options):
            self.option("scale", 0.5, plain)
        for o in self.fam.options:
            if o.choices and not o.domain_only and o.name != "scale":
                other = next((c for c in o.choices if c != o.default), None)
                if other is not None:
                    self.option(o.name, other, plain)
        for inp in self.fam.inputs:
            if inp.optional:
                self.optional_input(inp.name, plain)
        scope.supported = [f for f in dict.fromkeys(self.seen) if f not in scope.unsupported]
        return scope

    def allows(self, feature: str) -> bool:
        return self.scope.allows(feature)

    def probe(self, feature: str, cases, **kw) -> None:
        if not cases or self.fatal:
            return
        self.seen.append(feature)
        message = self.refused(cases, **kw)
        if message is not None:
            self.scope.unsupported[feature] = message

    def signature_feature(self, feature: str, named: bool, cases, **kw) -> None:
        if not named:
            self.seen.append(feature)
            self.scope.unsupported[feature] = "not in the kernel's signature"
            return
        self.probe(feature, cases, **kw)

    def lengths(self) -> bool:
        """The plain call at T = 2 was refused: find the multiple of T the kernel needs, if any;
        whether any length was accepted."""
        for m in (16, 32, 64, 128, 256):
            _, at_m = self.call(self.case(m, 0))
            if at_m is None:
                _, past = self.call(self.case(m + 1, 0))
                _, twice = self.call(self.case(2 * m, 0))
                if past is not None and twice is None:
                    self.scope.multiple = m
                    self.scope.constraints.append(f"T % {m} == 0")
                    self.scope.unsupported["partial_chunk"] = past
                return True
            if self.fatal:
                return True
        return False

    def backward(self, case) -> None:
        if self.fatal:
            return
        self.seen.append("backward")
        result, message = self.call(case, probe_grad=True, want_state=False)
        if message is not None:
            self.scope.unsupported["backward"] = message
        elif result is not None and not result.requires_grad:
            self.scope.unsupported["backward"] = "the output does not require grad for inputs that do"
        elif result is not None:          # a backward that says it is not implemented refuses it too
            try:
                self.dom.call(case, self.dtype, want_state=False,
                              grad={"output": torch.ones(result.output.shape, dtype=torch.float64)})
            except PropertyFailure as failure:
                if failure.detail.get("kind") == "backward" and failure.detail.get("exception") == "NotImplementedError":
                    self.scope.unsupported["backward"] = str(failure)

    def option(self, name: str, value, cases) -> None:
        """An option: unsupported when not in the signature or refused; ignored when the output does
        not change with it while the spec's does."""
        if not self.dom.takes(name):
            self.seen.append(name)
            self.scope.unsupported[name] = "not in the kernel's signature"
            return
        changed = [c.replace(options=c.options | {name: value}) for c in cases]
        self.probe(name, changed)
        if self.allows(name):
            self.honoured(name, cases[0], changed[0])

    def optional_input(self, name: str, cases) -> None:
        if not self.dom.takes(name):
            self.seen.append(name)
            self.scope.unsupported[name] = "not in the kernel's signature"
            return
        given = [self.case(c.dims["T"], c.seed + 10, optional=(name,)) for c in cases]
        self.probe(name, given)
        if self.allows(name):
            other = given[0].with_values({**given[0].arrays, name: _other_value(given[0].arrays[name])},
                                         given[0].state)
            self.honoured(name, given[0], other)

    def honoured(self, name: str, a, b) -> None:
        """``a`` and ``b`` differ only in ``name``: the kernel's outputs must differ where the spec's do."""
        if self.fatal:
            return
        ra, _ = self.call(a, want_state=False)
        rb, _ = self.call(b, want_state=False)
        if ra is None or rb is None or ra.output.shape != rb.output.shape:
            return
        want_a, want_b = self.dom.finite_reference(a), self.dom.finite_reference(b)
        spec_moves = float(np.max(np.abs(want_a - want_b), initial=0.0))
        if spec_moves > 1e-6 * float(np.max(np.abs(want_a), initial=1.0)) and torch.equal(ra.output, rb.output):
            self.scope.ignored[name] = (f"the kernel accepts {name!r} but ignores it: its output is the same for "
                                        f"two values of {name!r} where the spec's changes by up to {spec_moves:.3g}")


def _other_value(a: np.ndarray) -> np.ndarray:
    """Another valid value of an optional input: halfway to zero (inside every domain that holds a
    and 0 — gates, decays, biases, skips)."""
    return a * 0.5


def dtype_refusal(domain, dtype: str) -> str | None:
    """The kernel's message when it refuses ``dtype`` cleanly and consistently (an exception at the
    call, on every one of ``domain.probe_cases()``), else None; probed once per dtype (fp32 never: it
    is the negotiation's own dtype), then the process is fresh again."""
    scope = domain.scope
    if dtype == "fp32" or dtype in scope.dtypes or dtype in domain.dtypes_probed:
        return scope.dtypes.get(dtype)
    domain.dtypes_probed.add(dtype)
    prober = Prober(domain)
    prober.dtype = dtype
    message = prober.refused(domain.probe_cases(), want_state=False)
    domain.k.process.close()
    if message is not None:
        scope.dtypes[dtype] = message
    return scope.dtypes.get(dtype)


def negotiate(domain, required=()) -> Scope:
    """The scope of the kernel behind ``domain`` (see the module docstring)."""
    return Prober(domain, required).run()
