"""The kernel's own process: ``python -m lrnnspec.harness.worker FD PREFIX``.

It is the only process that imports and calls the kernel under test. It knows nothing of the
spec, the tolerance or the verdicts: it answers requests from the harness (:mod:`.process`) over the
socket ``FD`` with :mod:`.wire` messages and is killed and restarted when it stops answering.

Requests (``op``):

``load``   import the target and report its signature (parameter names and kinds), the module and
           file it is defined in;
``call``   run the kernel once through a calling convention (:mod:`.conventions`) on the inputs of
           the request — under ``torch.no_grad()`` as inference runs it, or with autograd for the
           gradients of ⟨w, results⟩ for the cotangents w of the request (or only to see whether
           the output requires grad), optionally with fresh allocations NaN-poisoned — and reply
           with the results (moved to the CPU, dtype kept) and their device;
``exit``   leave.

Before the kernel is imported the worker reports its environment (versions, device, variables
kernels read), redirects nothing itself — its stdout/stderr are the harness's capped log pipe —
and runs in its own working directory. A failure anywhere in this process after the kernel is
loaded is reported as the kernel's (the kernel's code could have caused it); on a CUDA device a
call is followed by a synchronize, and an error there means the device is lost: the worker says
so and exits, and the harness starts a fresh one.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
import time
import traceback

from lrnnspec.errors import Picklable

ENV_PREFIXES = ("TORCH_", "TRITON_", "CUDA_", "PYTORCH_", "NVIDIA_", "OMP_", "MKL_", "LRNNSPEC_TRITON_", "LRNNSPEC_ABSENT_")


def environment(device: str) -> dict:
    """What a kernel's behaviour may depend on, read before the kernel is imported."""
    import torch

    env = {"python": platform.python_version(), "machine": platform.machine(), "torch": torch.__version__,
           "torch_cuda": torch.version.cuda or "none"}
    for package in ("triton", "numpy"):
        try:
            env[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            pass
    if device.startswith("cuda") and torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(torch.device(device))
    env["variables"] = {k: v for k, v in sorted(os.environ.items()) if k.startswith(ENV_PREFIXES)}
    return env


class Failure(Picklable, Exception):
    """A reply that says the kernel did not produce results: ``kind`` is ``raised``, ``returned``,
    ``backward``, ``device_lost`` or ``worker``."""

    def __init__(self, kind: str, message: str, exc: BaseException | None = None):
        super().__init__(message)
        self.kind, self.message = kind, message
        self.type = type(exc).__name__ if exc is not None else ""
        self.traceback = "".join(traceback.format_exception(exc)) if exc is not None else ""

    def reply(self) -> dict:
        return {"ok": False, "kind": self.kind, "message": self.message, "type": self.type,
                "traceback": self.traceback[-20000:]}


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) < 2000 else text[:2000] + "…"


def load(request: dict) -> tuple[object, dict]:
    import inspect

    from lrnnspec.harness.conventions import signature_of
    from lrnnspec.harness.targets import load_target
    from lrnnspec.peers.shims import install_requested

    install_requested()
    fn = load_target(request["target"])
    info: dict = {"parameters": signature_of(fn)}
    inner = inspect.unwrap(getattr(fn, "func", fn))
    module = getattr(inner, "__module__", None) or ""
    info["module"] = module
    info["file"] = getattr(sys.modules.get(module), "__file__", None)
    info["is_package"] = hasattr(sys.modules.get(module), "__path__")
    info["qualname"] = getattr(inner, "__qualname__", repr(inner))
    return fn, info


class _Poisoned:
    """torch.empty / empty_like / new_empty return NaN-filled floating tensors while active."""

    def __enter__(self):
        import torch

        self.originals = (torch.empty, torch.empty_like, torch.Tensor.new_empty)
        empty, empty_like, new_empty = self.originals

        def poison(t):
            if isinstance(t, torch.Tensor) and t.is_floating_point():
                t.fill_(float("nan"))
            return t

        torch.empty = lambda *a, **kw: poison(empty(*a, **kw))
        torch.empty_like = lambda *a, **kw: poison(empty_like(*a, **kw))
        torch.Tensor.new_empty = lambda self, *a, **kw: poison(new_empty(self, *a, **kw))
        return self

    def __exit__(self, *exc):
        import torch

        torch.empty, torch.empty_like, torch.Tensor.new_empty = self.originals


def _check_device(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        try:
            torch.cuda.synchronize(torch.device(device))
        except Exception as exc:  # noqa: BLE001 - any error here means the context is gone
            raise Failure("device_lost", f"the kernel lost its CUDA device: {_describe(exc)}", exc) from None


def call(fn, request: dict) -> dict:
    """One kernel call (see the module docstring); returns the reply tree."""
    import torch

    from lrnnspec.harness.conventions import ADAPTERS, ResultError

    device = request["device"]
    mapped = request["inputs"]
    x = {n: t.to(device) for n, t in mapped.items()}
    init = request.get("initial_state")
    init = None if init is None else {n: t.to(device) for n, t in init.items()}
    grad = request.get("grad")
    probe = request.get("probe_grad", False)
    leaves = {}
    if grad is not None or probe:
        for n, t in x.items():
            if t.is_floating_point():
                x[n] = t.detach().clone().requires_grad_(True)
                leaves[n] = x[n]
        for n, t in (init or {}).items():
            init[n] = t.detach().clone().requires_grad_(True)
            leaves[f"initial_state[{n}]"] = init[n]
    args = dict(request["call"], inputs=x, initial_state=init)
    args["kwargs"] = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in args["kwargs"].items()}
    adapter = ADAPTERS[request["adapter"]]
    started = time.perf_counter()
    try:
        # inference calls run as inference does (no autograd), gradient calls with it
        with torch.set_grad_enabled(grad is not None or probe), (_Poisoned() if request.get("poison") else _Nothing()):
            output, state = adapter(fn, **args)
    except Failure:
        raise
    except ResultError as exc:
        _check_device(device)
        raise Failure("returned", str(exc)) from None
    except BaseException as exc:  # noqa: BLE001 - SystemExit and KeyboardInterrupt too: the kernel raised them
        _check_device(device)
        raise Failure("raised", f"the kernel raised {_describe(exc)}", exc) from None
    _check_device(device)
    if not isinstance(output, torch.Tensor):
        raise Failure("returned", f"the kernel returned {type(output).__name__} as its output, not a tensor")
    if state is not None:
        if not isinstance(state, dict) or not all(isinstance(s, torch.Tensor) for s in state.values()):
            raise Failure("returned", "the kernel's final state is not made of tensors")
    reply = {"ok": True, "device": output.device.type, "requires_grad": bool(output.requires_grad),
             "state_devices": {n: s.device.type for n, s in (state or {}).items()}}
    results = {"output": output, **{f"state[{n}]": s for n, s in (state or {}).items()}}
    limit = request.get("max_result_bytes")
    total = sum(t.numel() * t.element_size() for t in results.values())
    if limit is not None and total > limit:
        raise Failure("returned", f"the kernel returned {total} bytes of results where at most {limit} fit the "
                                  f"expected shapes")
    if grad is not None:
        reply["grads"] = _vjp(output, state, grad, leaves, device)
    reply["seconds"] = time.perf_counter() - started       # the kernel's own time (forward, backward)
    if device != "cpu":   # let the harness see in-place changes through its shared memory
        for given, used in ((mapped, x), (request.get("initial_state") or {}, init or {})):
            for n, t in given.items():
                if grad is None and not probe:
                    t.copy_(used[n].detach().cpu())
    reply["output"] = output.detach().cpu()
    reply["state"] = None if state is None else {n: s.detach().cpu() for n, s in state.items()}
    return reply


class _Nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _vjp(output, state, cotangents: dict, leaves: dict, device: str) -> dict:
    """Gradients of Σ⟨w, r⟩ (float64) over the results r with a cotangent w; ``None`` for a leaf the
    results do not reach. ``{"loss_requires_grad": False}`` when no result carries a graph."""
    import torch

    terms = [("output", output)] + [(n, s) for n, s in (state or {}).items()]
    loss = None
    for name, r in terms:
        w = cotangents.get(name)
        if w is None:
            continue
        if tuple(r.shape) != tuple(w.shape):
            raise Failure("returned", f"the kernel's {name} has shape {tuple(r.shape)}, expected {tuple(w.shape)}")
        term = (r.double() * w.to(device)).sum()
        loss = term if loss is None else loss + term
    if loss is None or not loss.requires_grad:
        return {"loss_requires_grad": False}
    try:
        grads = torch.autograd.grad(loss, list(leaves.values()), allow_unused=True)
    except BaseException as exc:  # noqa: BLE001
        _check_device(device)
        raise Failure("backward", f"the backward raised {_describe(exc)}", exc) from None
    _check_device(device)
    return {"loss_requires_grad": True,
            "values": {n: (None if g is None else g.detach().cpu()) for n, g in zip(leaves, grads)}}


def serve(fd: int, prefix: str) -> None:
    import socket

    from lrnnspec.harness import wire

    os.set_inheritable(fd, False)           # the kernel's own children do not get the channel
    sock = socket.socket(fileno=fd)
    segments = wire.Segments(prefix + "w")
    device = os.environ.get("LRNNSPEC_WORKER_DEVICE", "cpu")
    wire.send_frame(sock, wire.encode({"ok": True, "environment": environment(device)}))
    fn = None
    while True:
        try:
            message = wire.recv_frame(sock)
        except (EOFError, OSError):
            return
        request = wire.decode(message, prefix=prefix + "p", take=False)
        op = request.get("op")
        if op == "exit":
            return
        try:
            if op == "load":
                fn, info = load(request)
                reply = {"ok": True, "info": info}
            elif op == "call":
                reply = call(fn, request)
            else:
                reply = Failure("worker", f"unknown request {op!r}").reply()
        except Failure as failure:
            reply = failure.reply()
        except BaseException as exc:  # noqa: BLE001 - reported, never fatal to the loop
            if op == "load":    # a TargetError says what went wrong already (import errors included)
                message = str(exc) if type(exc).__name__ == "TargetError" else f"loading it raised {_describe(exc)}"
                reply = Failure("load_error", message, exc).reply()
            else:
                reply = Failure("worker", f"the kernel process failed: {_describe(exc)}", exc).reply()
        try:
            data = wire.encode(reply, segments)
        except wire.WireError as exc:
            data = wire.encode(Failure("returned", f"the kernel's results cannot be sent back: {exc}").reply())
        wire.send_frame(sock, data)
        if reply.get("kind") == "device_lost":
            return


if __name__ == "__main__":
    serve(int(sys.argv[1]), sys.argv[2])
