"""The template process: a fresh interpreter that imports torch and lrnnspec's worker, then only forks.

Starting a worker as a fresh interpreter costs an ``import torch`` (≈ 2 s of CPU) every time; forked
from this template it costs a fork. The template never imports or calls any kernel, so every worker
starts as clean as a fresh interpreter: nothing of any kernel, of the harness's process, or of an
earlier worker. ``python -m lrnnspec.harness.template FD`` serves, over the socket ``FD``:

``fork``  with two descriptors attached (the worker's channel, its log): fork a worker — its own
          session, working directory, import path, the harness's environment variables as they are
          now, stdout and stderr on the log — and reply with its pid;
``wait``  the exit status of a worker (``None`` while it runs), within a timeout.

No ``multiprocessing``: its fork server re-runs the harness's ``__main__`` module in every child.
"""

from __future__ import annotations

import os
import socket
import sys
import time

PRELOAD = ("torch", "numpy", "lrnnspec.harness.worker", "lrnnspec.harness.conventions", "lrnnspec.harness.wire",
           "lrnnspec.harness.targets")


def _fork(request: dict, fds: list[int], control: socket.socket) -> int:
    pid = os.fork()
    if pid:
        for fd in fds:
            os.close(fd)
        return pid
    try:                                   # the worker
        control.close()
        channel, log = fds
        os.setsid()
        os.chdir(request["workdir"])
        sys.path[:] = request["path"]
        os.environ.clear()                 # the harness's variables now, not when the template started
        os.environ.update(request["environ"], LRNNSPEC_WORKER_DEVICE=request["device"])
        for fd in (1, 2):
            os.dup2(log, fd)
        os.close(log)
        from lrnnspec.harness.worker import serve

        serve(channel, request["prefix"])
        code = 0
    except BaseException:  # noqa: BLE001 - a worker that failed to start says so through its exit code
        import traceback

        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _status(pid: int, timeout: float) -> int | None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return -9                      # reaped already: it was killed
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.005)


def serve(fd: int) -> None:
    import importlib

    from lrnnspec.harness import wire

    for module in PRELOAD:
        importlib.import_module(module)
    control = socket.socket(fileno=fd)
    wire.send_frame(control, wire.encode({"ok": True}))
    while True:
        try:
            _, fds, _, _ = socket.recv_fds(control, 1, 2)
            request = wire.decode(wire.recv_frame(control))
        except (EOFError, OSError, wire.WireError):
            return
        if request.get("op") == "fork":
            reply = {"pid": _fork(request, fds, control)}
        elif request.get("op") == "wait":
            reply = {"code": _status(int(request["pid"]), float(request.get("timeout", 0)))}
        else:
            reply = {"error": f"unknown request {request.get('op')!r}"}
        wire.send_frame(control, wire.encode(reply))


if __name__ == "__main__":
    serve(int(sys.argv[1]))
