"""The kernel under test, as the harness holds it: a target running in its own worker process.

:class:`Kernel` never holds the kernel's function: it holds a :class:`~.process.KernelProcess` that
imports the target, the signature the worker read from it, the calling convention, the
capabilities the signature gives (:class:`Signature`) and the declared precision contracts. Its
:meth:`request` sends one call and turns everything the worker process can do wrong — raise,
return garbage, hang, die, lose its device — into a :class:`~.verdicts.PropertyFailure` that says
so (``fatal`` when the process had to be restarted). What is drawn, computed and compared is the
domain's business (:mod:`.sequence`, :mod:`.dag`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from lrnnspec.spec import get_family
from lrnnspec.spec.contract import PrecisionContract
from lrnnspec.spec.errors import SpecError

from .process import KernelDied, KernelProcess
from .tolerance import CONTRACTS
from .verdicts import PropertyFailure

TORCH_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16, "fp64": torch.float64}


class KernelFailure(PropertyFailure):
    """A call that produced no results; ``fatal``: the worker process had to be restarted."""

    def __init__(self, message: str, detail: dict | None = None, fatal: bool = False):
        super().__init__(message, detail)
        self.fatal = fatal


@dataclass(frozen=True)
class Signature:
    """What the worker read from the target's signature: parameter names, whether ``**kwargs`` is
    there; ``known=False`` for a callable without a readable signature (a builtin)."""

    parameters: frozenset[str]
    var_keyword: bool
    known: bool = True
    defaults: dict = field(default_factory=dict)     # parameter → its default value (JSON scalars; else a repr)
    required: frozenset[str] = frozenset()            # parameters without a default

    @classmethod
    def of(cls, fn) -> "Signature":
        """Read in this process (trusted code only: tests of lrnnspec's own kernels)."""
        from .conventions import signature_of

        return cls.from_info(signature_of(fn))

    @classmethod
    def from_info(cls, params: list[dict] | None) -> "Signature":
        if params is None:
            return cls(frozenset(), True, known=False)
        return cls(frozenset(p["name"] for p in params if p["kind"] not in ("VAR_POSITIONAL", "VAR_KEYWORD")),
                   any(p["kind"] == "VAR_KEYWORD" for p in params),
                   defaults={p["name"]: p.get("value") for p in params if p["default"]},
                   required=frozenset(p["name"] for p in params if not p["default"]
                                      and p["kind"] not in ("VAR_POSITIONAL", "VAR_KEYWORD")))

    def names(self, name: str) -> bool:
        """Whether the signature names this parameter (``**kwargs`` names nothing)."""
        return name in self.parameters or not self.known

    def accepts(self, name: str) -> bool:
        """Whether a call may pass this keyword without a TypeError."""
        return name in self.parameters or self.var_keyword


@dataclass
class Result:
    """One call's results (on the CPU, in the dtypes the kernel returned) and where they were made."""

    output: torch.Tensor
    state: dict[str, torch.Tensor] | None
    device: str
    requires_grad: bool
    state_devices: dict[str, str]
    grads: dict | None = None
    request_before: dict | None = None     # with share_inputs: the request as sent ...
    request_after: dict | None = None      # ... and as its shared memory reads after the call

    def __iter__(self):
        return iter((self.output, self.state))


def check_contracts(contracts: dict | None) -> dict[str, str]:
    for d, contract in (contracts or {}).items():
        if d not in TORCH_DTYPES:
            raise SpecError("contracts", f"keys must be dtypes ({', '.join(TORCH_DTYPES)}), got {d!r}")
        try:
            PrecisionContract.parse(contract)
        except SpecError as exc:
            raise SpecError("contracts", f"{d}: {exc}") from None
    return {**CONTRACTS, **(contracts or {})}


class Kernel:
    """``target`` (``package.module:function`` or ``path/to/file.py:function``) certified as
    ``family`` under ``convention`` on ``device``; each call may take ``timeout`` seconds.

    ``process``: an already started :class:`KernelProcess` of the same target to reuse (tests that
    certify one target many times); ``log``: where the worker's stdout/stderr go; ``env``:
    variables set in the worker. DAG families take ``layouts`` and ``max_nodes`` (see :mod:`.dag`).
    Raises :class:`~.process.LoadError` when the target cannot be imported there."""

    def __init__(self, target: str, family: str, convention: str | None = None, device: str = "cpu",
                 timeout: float = 60.0, contracts: dict[str, str] | None = None, *, process: KernelProcess | None = None,
                 log: str | Path | None = None, env: dict | None = None, **domain_options):
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise SpecError("timeout", f"must be a positive number of seconds, got {timeout!r}")
        self.fam = get_family(family)
        self.family, self.target, self.device = self.fam.name, target, device
        self.contracts = check_contracts(contracts)
        from lrnnspec.peers.known import known

        self.known = known(target)
        env = {**(self.known.env if self.known else {}), **(env or {})}     # what a known function needs
        self.process = process or KernelProcess(target, device, timeout=timeout, env=env, log=log)
        self.process.timeout = timeout
        self.process.start()
        self.signature = Signature.from_info(self.process.info["parameters"])
        from .dag import DagDomain
        from .sequence import SequenceDomain

        if self.known is not None and self.known.parameters is not None:     # an opaque signature, known
            self.signature = Signature(frozenset(self.known.parameters), True, defaults=dict(self.known.defaults))
        domain = SequenceDomain if self.fam.kind == "sequence" else DagDomain
        try:
            self.domain = domain(self, convention, **domain_options)
        except BaseException:
            if process is None:
                self.process.close()
            raise
        self.convention = self.domain.convention_name
        self.restarts = 0

    @property
    def timeout(self) -> float:
        return self.process.timeout

    def close(self) -> None:
        self.process.close()

    def reference(self, case, dtype: str):
        return self.domain.reference(case, dtype, self.contracts[dtype])

    def request(self, tree: dict, share_inputs: bool = False) -> Result:
        """Send one call request; a reply without results becomes a :class:`KernelFailure`."""
        try:
            reply = self.process.request(tree, share_inputs=share_inputs)
        except KernelDied as died:
            self.restarts += 1
            raise KernelFailure(str(died), {"cause": died.cause}, fatal=True) from None
        if not reply.get("ok"):
            detail = {"kind": reply.get("kind"), "exception": reply.get("type") or None}
            if reply.get("traceback"):
                detail["traceback"] = reply["traceback"][-3000:]
            if reply.get("kind") == "device_lost":
                self.restarts += 1
                raise KernelFailure(f"{reply.get('message')} (the kernel process was restarted)", detail, fatal=True)
            raise KernelFailure(reply.get("message", "the kernel failed"), detail)
        if not isinstance(reply.get("output"), torch.Tensor):
            raise KernelFailure("the kernel process replied without an output tensor")
        state = reply.get("state")
        if state is not None and not (isinstance(state, dict) and all(isinstance(s, torch.Tensor)
                                                                      for s in state.values())):
            raise KernelFailure("the kernel process replied with a malformed state")
        return Result(reply["output"], state, str(reply.get("device")), bool(reply.get("requires_grad")),
                      dict(reply.get("state_devices") or {}), reply.get("grads"),
                      tree if share_inputs else None, reply.get("request_after"))

    def max_result_bytes(self, tensors) -> int:
        """The most result bytes a call may send back: 16× its inputs' (in float64), plus 1 MiB."""
        return 16 * 8 * sum(t.numel() for t in tensors) + (1 << 20)
