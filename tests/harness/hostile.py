"""A corpus of hostile kernels: each tries to crash, stall, fool or tamper with the harness.

Every kernel implements ``linear_attention`` with FLA's signature (``q, k, v, scale, initial_state,
output_final_state, cu_seqlens``) on top of the correct :func:`lrnnspec.impls.linear_attention.
chunk_linear_attn`, plus ONE hostile behaviour. :data:`CORPUS` says, for each, what the harness must
conclude — the property that fails and what its message says, or that the kernel is certified (a
benign change of global state that does not alter its results) — and how long that may take.
``tests/harness/test_hostile.py`` certifies each one as a user would and checks the verdict, that the
harness is alive and that a complete certificate was written.

This file is imported by the kernels' own worker processes (by path), and by the tests.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass, field

import torch

from lrnnspec.impls.linear_attention import chunk_linear_attn

FILE = os.path.abspath(__file__)
FAMILY = "linear_attention"


def correct(q, k, v, scale=None, initial_state=None, output_final_state=False, cu_seqlens=None):
    return chunk_linear_attn(q, k, v, scale, initial_state, output_final_state, False, cu_seqlens)


# --- it raises ---------------------------------------------------------------------------------------
def raises_always(q, k, v, scale=None, initial_state=None, output_final_state=False, cu_seqlens=None):
    raise RuntimeError("CUDA kernel launch failed: too many resources requested")


def raises_for_long_sequences(q, k, v, scale=None, initial_state=None, output_final_state=False, cu_seqlens=None):
    if q.shape[1] > 6:
        raise ValueError(f"sequence length {q.shape[1]} exceeds the tile")
    return correct(q, k, v, scale, initial_state, output_final_state, cu_seqlens)


def raises_without_grad(q, k, v, scale=None, initial_state=None, output_final_state=False, cu_seqlens=None):
    if not torch.is_grad_enabled():
        raise RuntimeError("inference path not implemented")
    return correct(q, k, v, scale, initial_state, output_final_state, cu_seqlens)


def raises_system_exit(q, k, v, scale=None, initial_state=None, output_final_state=False, cu_seqlens=None):
    sys.exit(3)


def raises_keyboard_interrupt(q, k, v, scale=None, initial_state=None, output_final_state=False, cu_seqlens=None):
    raise KeyboardInterrupt


def allocates_a_terabyte(q, k, v, scale=None, initial_state=None, output_final_state=False, cu_seqlens=None):
    workspace = torch.empty(2 ** 38, dtype=torch.float32)       # 1 TiB
    return workspace[: v.numel()].view_as(v)


def backward_raises(q, k, v, scale=None, initial_state=None, output_final_state=False, cu_seqlens=None):
    o, s = correct(q, k, v, scale, initial_state, output_final_state, cu_seqlens)
    return _Broken.apply(o), s


class _Broken(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, g):
        raise RuntimeError("backward not implemented for this layout")


# --- it returns garbage ----------------------------------------------------------------------------------
def returns_a_list(q, k, v, scale=None, initial_state=None, output_final_state=False, cu_seqlens=None):
    o, s = correct(q, k, v, scale, initial_state, output_final_state, cu_seqlens)
    return [o.tolist(), s]


def returns_numpy(q, k, v, scale=None, initial_state=None, output_final_state=False, cu_seqlens=None):
    o, s = correct(q, k, v, scale, initial_state, output_final_state, cu_seqlens)
    return o.numpy(), s


def returns_transposed(q, k, v, scale=None, initial_state=None, output_final_state=False, cu_seqlens=None):
    o, s = correct(q, k, v, scale, initial_state, output_final_state, cu_seqlens)
    return o.transpose(1, 2), s                                 # heads-first by mistake


def returns_complex(q, k, v, scale=None, initial_state=None, output_final_state=False, cu_seqlens=None):
    o, s = correct(q, k, v, scale, initial_state, output_final_state, cu_seqlens)
    return torch.complex(o.float(), torch.zeros_like(o.float())), s


def returns_a_huge_tensor(q, k, v, scale=None, initial_state=None, output_final_state=False, cu_seqlens=None):
    o, s = correct(q, k, v, scale, initial_state, output_final_state, cu_seqlens)
    return torch.zeros(64, 1024, 1024, dtype=o.dtype), s        # 256 MiB where a few KiB are due


def returns_its_input(q, k, v, scale=None, initial_state=None, output_final_state=False, cu_seqlens=None):
    _, s = correct(q, k, v, scale, initial_state, output_final_state, cu_seqlens)
    return v, s                                                  # the output aliases an input


def writes_output_into_its_input(q, k, v, scale=None, initial_state=None, output_final_state=False, cu_seqlens=None):
    o, s = correct(q, k, v, scale, initial_state, output_final_state, cu_seqlens)
    return v.copy_(o), s                                         # saves an allocation, clobbers the caller's v


def nan_for_some_lengths(q, k, v, scale=None, initial_state=None, output_final_state=False, cu_seqlens=None):
    o, s = correct(q, k, v, scale, initial_state, output_final_state, cu_seqlens)
    if q.shape[1] >= 11:
        o = o.clone()
        o[:, 10] = float("nan")
    return o, s


def inf_for_some_lengths(q, k, v, scale=None, initial_state=None, output_final_state=False, cu_seqlens=None):
    o, s = correct(q, k, v, scale, initial_state, output_final_state, cu_seqlens)
    if q.shape[1] >= 5 and q.shape[1] % 2:
        o = o.clone()
        o[:, -1] = float("inf")
    return o, s


_CACHE: dict = {}


def caches_by_shape(q, k, v, scale=None, initial_state=None, output_final_state=False, cu_seqlens=None):
    key = (tuple(q.shape), tuple(v.shape), scale, initial_state is None, output_final_state)
    if key not in _CACHE:                                        # "the inputs of a shape never change"
        _CACHE[key] = correct(q, k, v, scale, initial_state, output_final_state, cu_seqlens)
    return _CACHE[key]


_CALLS = [0]


def wrong_on_the_first_call(q, k, v, scale=None, initial_state=None, output_final_state=False, cu_seqlens=None):
    o, s = correct(q, k, v, scale, initial_state, output_final_state, cu_seqlens)
    if o.abs().sum() > 0:                                        # the first call with anything to get wrong
        _CALLS[0] += 1
        if _CALLS[0] == 1:
            return o * 1.5, s                                    # an uninitialized workspace, first use only
    return o, s


def wrong_on_every_second_call(q, k, v, scale=None, initial_state=None, output_final_state=False, cu_seqlens=None):
    _CALLS[0] += 1
    o, s = correct(q, k, v, scale, initial_state, output_final_state, cu_seqlens)
    return (o * (1 + 1e-3) if _CALLS[0] % 2 == 0 else o), s     # a race on a shared buffer


# --- it stalls or dies -------------------------------------------------------------------------------------
def hangs_ignoring_signals(q, k, v, scale=None, initial_state=None, output_final_state=False, cu_seqlens=None):
    import signal

    for sig in (signal.SIGALRM, signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    while True:
        pass


def is_very_slow(q, k, v, scale=None, initial_state=None, output_final_state=False, cu_seqlens=None):
    time.sleep(30)
    return correct(q, k, v, scale, initial_state, output_final_state, cu_seqlens)


def calls_os_exit(q, k, v, scale=None, initial_state=None, output_final_state=False, cu_seqlens=None):
    os._exit(0)


def segfaults(q, k, v, scale=None, initial_state=None, output_final_state=False, cu_seqlens=None):
    import ctypes

    return ctypes.string_at(0)


def segfaults_at_long_lengths(q, k, v, scale=None, initial_state=None, output_final_state=False, cu_seqlens=None):
    if q.shape[1] >= 13:
        import ctypes

        ctypes.string_at(0)
    return correct(q, k, v, scale, initial_state, output_final_state, cu_seqlens)


def corrupts_the_harness_channel(q, k, v, scale=None, initial_state=None, output_final_state=False, cu_seqlens=None):
    import socket

    for fd in map(int, os.listdir("/proc/self/fd")):
        try:
            s = socket.socket(fileno=os.dup(fd))
        except OSError:
            continue
        try:
            s.send(b"\x10\x00\x00\x00{not json at all}")
        except OSError:
            pass
        s.detach()
    return correct(q, k, v, scale, initial_state, output_final_state, cu_seqlens)


# --- it tampers with the harness ----------------------------------------------------------------------------
def _tamper():
    """Everything a kernel in the harness's process could patch to certify itself."""
    import numpy as np

    import lrnnspec.harness.properties as properties
    import lrnnspec.harness.runner as runner
    import lrnnspec.harness.tolerance as tolerance
    from lrnnspec.harness.verdicts import PASS, Verdict

    class Perfect:
        worst, ok, worst_index, abs_error, percentiles = 0.0, True, (), 0.0, {}
        r = np.zeros(1)

        def summary(self):
            return {"worst_normalized": 0.0}

    tolerance.compare = lambda *a, **kw: Perfect()
    for name in list(properties.PROPERTY_FUNCTIONS):
        properties.PROPERTY_FUNCTIONS[name] = lambda *a, **kw: {}
    runner.run_property = lambda k, prop, dtype, **kw: Verdict(prop, dtype, PASS)
    torch.allclose = lambda *a, **kw: True
    torch.equal = lambda *a, **kw: True
    torch.testing.assert_close = lambda *a, **kw: None
    np.allclose = lambda *a, **kw: True
    np.testing.assert_allclose = lambda *a, **kw: None


_tamper_at_import = os.environ.get("LRNNSPEC_HOSTILE_IMPORT_TAMPER") == "1"


def patches_the_harness_at_import(q, k, v, scale=None, initial_state=None, output_final_state=False, cu_seqlens=None):
    o, s = correct(q, k, v, scale, initial_state, output_final_state, cu_seqlens)
    return o * 0.5, s                                           # wrong, and sure the verdict code is patched


def patches_the_harness_at_call(q, k, v, scale=None, initial_state=None, output_final_state=False, cu_seqlens=None):
    _tamper()
    o, s = correct(q, k, v, scale, initial_state, output_final_state, cu_seqlens)
    return o * 0.5, s


def rewrites_the_callers_frames(q, k, v, scale=None, initial_state=None, output_final_state=False, cu_seqlens=None):
    """Walks up the stack and replaces every comparison, failure and verdict it can reach."""
    frame = sys._getframe(1)
    while frame is not None:
        for scope in (frame.f_globals, frame.f_locals):
            for name in list(scope):
                if name in ("compare", "check_output", "check_state", "PropertyFailure", "failures", "run_property"):
                    try:
                        scope[name] = None
                    except (TypeError, KeyError):
                        pass
        frame = frame.f_back
    o, s = correct(q, k, v, scale, initial_state, output_final_state, cu_seqlens)
    return o * 0.5, s


def right_only_under_test(q, k, v, scale=None, initial_state=None, output_final_state=False, cu_seqlens=None):
    """Returns the right answer only when a frame of the harness's property code is on the stack."""
    import inspect

    watched = any(f.function.startswith("prop_") or "certif" in f.filename for f in inspect.stack())
    o, s = correct(q, k, v, scale, initial_state, output_final_state, cu_seqlens)
    return (o if watched else o * 0.5), s


# --- it changes global state (benign: its results are right) ----------------------------------------------
torch.set_default_dtype(torch.float64) if os.environ.get("LRNNSPEC_HOSTILE_DEFAULT_DTYPE") == "1" else None


def sets_default_dtype(q, k, v, scale=None, initial_state=None, output_final_state=False, cu_seqlens=None):
    torch.set_default_dtype(torch.float64)
    return correct(q, k, v, scale, initial_state, output_final_state, cu_seqlens)


def sets_threads_and_seeds(q, k, v, scale=None, initial_state=None, output_final_state=False, cu_seqlens=None):
    import random

    import numpy as np

    torch.set_num_threads(1)
    torch.manual_seed(1234)
    np.random.seed(1234)
    random.seed(1234)
    return correct(q, k, v, scale, initial_state, output_final_state, cu_seqlens)


def sets_environment_variables(q, k, v, scale=None, initial_state=None, output_final_state=False, cu_seqlens=None):
    os.environ.update(LRNNSPEC_PROFILE="dev", TRITON_INTERPRET="0", HYPOTHESIS_PROFILE="dev", PYTHONHASHSEED="1")
    return correct(q, k, v, scale, initial_state, output_final_state, cu_seqlens)


def changes_directory(q, k, v, scale=None, initial_state=None, output_final_state=False, cu_seqlens=None):
    os.chdir("/")
    return correct(q, k, v, scale, initial_state, output_final_state, cu_seqlens)


def floods_stdout_and_stderr(q, k, v, scale=None, initial_state=None, output_final_state=False, cu_seqlens=None):
    line = "{\"certified\": true} " * 40 + "\n"
    sys.stdout.write(line * 2000)                               # ≈ 1.6 MB per call
    sys.stderr.write(line * 200)
    os.write(1, b"raw fd write\n" * 1000)
    return correct(q, k, v, scale, initial_state, output_final_state, cu_seqlens)


_THREADS: list = []


def leaves_a_thread_running(q, k, v, scale=None, initial_state=None, output_final_state=False, cu_seqlens=None):
    if not _THREADS:
        t = threading.Thread(target=lambda: time.sleep(10 ** 6), daemon=False, name="kernel-prefetcher")
        t.start()
        _THREADS.append(t)
    return correct(q, k, v, scale, initial_state, output_final_state, cu_seqlens)


# --- the corpus ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Hostile:
    """``expect``: property → regex its failure message must match (empty: the kernel is certified);
    ``properties``: what is certified (the named ones and another, to show the run goes on);
    ``seconds``: the bound on the whole certification; ``timeout``: the per-call limit used;
    ``env``: variables set for the kernel's process."""

    name: str
    behaviour: str
    expect: dict[str, str] = field(default_factory=dict)
    properties: tuple[str, ...] = ("forward", "final_state")
    seconds: float = 60.0
    timeout: float = 20.0
    env: dict = field(default_factory=dict)

    @property
    def target(self) -> str:
        return f"{FILE}:{self.name}"


DEATH = "died with signal 11 \\(SIGSEGV\\)"
CORPUS = (
    Hostile("raises_always", "raises on every call", {"forward": "kernel raised RuntimeError: CUDA kernel launch"}),
    Hostile("raises_for_long_sequences", "raises for T > 6",
            {"forward": r"ValueError: sequence length (7|3[23]|6[345]) exceeds the tile"}),
    Hostile("raises_without_grad", "raises under torch.no_grad (its inference path)",
            {"forward": "inference path not implemented"}, ("forward", "gradients")),
    Hostile("raises_system_exit", "calls sys.exit(3)", {"forward": "kernel raised SystemExit: 3"}),
    Hostile("raises_keyboard_interrupt", "raises KeyboardInterrupt", {"forward": "kernel raised KeyboardInterrupt"}),
    Hostile("allocates_a_terabyte", "asks for 1 TiB of workspace",
            {"forward": "kernel raised RuntimeError.*allocate|output error"}),
    Hostile("backward_raises", "a custom backward that raises", {"gradients": "the backward raised RuntimeError"},
            ("forward", "gradients")),
    Hostile("returns_a_list", "returns a list", {"forward": "returned list as its output, not a tensor"}),
    Hostile("returns_numpy", "returns a NumPy array", {"forward": "returned ndarray as its output, not a tensor"}),
    Hostile("returns_transposed", "returns the output heads-first", {"forward": "output has shape"}),
    Hostile("returns_complex", "returns a complex tensor", {"forward": "cannot be sent back.*complex"}),
    Hostile("returns_a_huge_tensor", "returns 256 MiB for a few KiB", {"forward": "bytes of results where at most"}),
    Hostile("returns_its_input", "returns v as the output", {"forward": "output error"}),
    Hostile("writes_output_into_its_input", "writes the output into v and returns it",
            {"no_mutation": "modified its input 'v' in place"}, ("forward", "no_mutation")),
    Hostile("nan_for_some_lengths", "NaN at t = 10 when T ≥ 11", {"forward": "output error", "finite": "NaN/inf"},
            ("forward", "finite")),
    Hostile("inf_for_some_lengths", "inf at the last step for odd T ≥ 5", {"finite": "NaN/inf"},
            ("forward", "finite")),
    Hostile("caches_by_shape", "returns the result of the first call of each shape",
            {"determinism": "on other values of the same shapes"}, ("forward", "determinism")),
    Hostile("wrong_on_the_first_call", "wrong on the first call of the process only",
            {"forward": "did not reproduce|output error"}),
    Hostile("wrong_on_every_second_call", "wrong on every second call",
            {"determinism": "different results|on other values of the same shapes"}, ("forward", "determinism")),
    Hostile("hangs_ignoring_signals", "spins forever, ignoring SIGALRM, SIGINT and SIGTERM",
            {"forward": "no answer in 2 s", "final_state": "no answer in 2 s"}, seconds=90, timeout=2),
    Hostile("is_very_slow", "takes 30 s per call", {"forward": "no answer in 2 s"}, ("forward",), seconds=60, timeout=2),
    Hostile("calls_os_exit", "calls os._exit(0)", {"forward": "exited with code 0", "final_state": "exited with code 0"}),
    Hostile("segfaults", "dereferences a null pointer", {"forward": DEATH, "final_state": DEATH}),
    Hostile("segfaults_at_long_lengths", "dereferences a null pointer when T ≥ 13", {"forward": DEATH}),
    Hostile("corrupts_the_harness_channel", "writes garbage into every socket it finds",
            {"forward": "unreadable reply|closed its channel|died|exited"}),
    Hostile("patches_the_harness_at_import", "patches lrnnspec's comparison and verdict code and torch/numpy's "
            "comparison helpers at import, and returns half the output", {"forward": "output error"},
            env={"LRNNSPEC_HOSTILE_IMPORT_TAMPER": "1"}),
    Hostile("patches_the_harness_at_call", "the same patches on its first call", {"forward": "output error"}),
    Hostile("rewrites_the_callers_frames", "overwrites comparison and failure names in every frame above it",
            {"forward": "output error"}),
    Hostile("right_only_under_test", "right only when it sees the harness's property code on its stack",
            {"forward": "output error"}, ("forward",)),
    Hostile("sets_default_dtype", "sets torch's default dtype to float64 (at import and per call)", {},
            ("forward", "final_state", "contract"), env={"LRNNSPEC_HOSTILE_DEFAULT_DTYPE": "1"}),
    Hostile("sets_threads_and_seeds", "sets the thread count and every seed", {}),
    Hostile("sets_environment_variables", "sets LRNNSPEC_PROFILE, TRITON_INTERPRET and others", {}),
    Hostile("changes_directory", "chdir('/') on every call", {}),
    Hostile("floods_stdout_and_stderr", "prints ≈ 1.8 MB per call, through sys.stdout and fd 1", {}),
    Hostile("leaves_a_thread_running", "starts a non-daemon thread that never ends", {}),
)


if _tamper_at_import:
    _tamper()


# --- not in the corpus: a kernel whose bug shows only under an environment variable ---------------------
def wrong_under_a_triton_variable(q, k, v, scale=None, initial_state=None, output_final_state=False, cu_seqlens=None):
    """Right, except when TRITON_LRNNSPEC_PROBE=1 is set (a code path some variable selects)."""
    o, s = correct(q, k, v, scale, initial_state, output_final_state, cu_seqlens)
    return (o * 0.5 if os.environ.get("TRITON_LRNNSPEC_PROBE") == "1" else o), s
