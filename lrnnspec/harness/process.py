"""The harness's side of the kernel's worker process (:mod:`.worker`): start, ask, time out, restart.

:class:`KernelProcess` starts the worker in a clean state — forked from a template process that has
imported torch and never any kernel's code, or as a fresh interpreter (``python -m
lrnnspec.harness.worker``) when variables must be set before libraries are imported — in a new
session (so the kernel's own children and threads die with it) and in a working directory of its
own. Its stdout and stderr are one pipe that a thread of
the harness drains into a size-capped log — a kernel that prints never reaches the harness's
output. Requests are answered within ``timeout`` seconds or the process group is killed
(SIGKILL: a kernel that ignores or re-arms signals cannot stop it) and :class:`KernelDied` says
why: no answer in time, the exit code or signal, a lost device, an unreadable reply. The next
request starts a fresh worker, which loads the kernel again.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from lrnnspec.errors import Picklable

from . import wire

LOG_CAP = 1 << 20          # bytes of the worker's output kept in the log; the rest is counted, not kept
TAIL = 2000                # characters of the latest output quoted when the worker dies
START_TIMEOUT = 120.0      # seconds for a fresh interpreter to import torch and say hello


class KernelDied(Picklable, Exception):
    """The worker did not answer a request: ``cause`` is ``timeout``, ``exit``, ``signal``,
    ``device_lost`` or ``protocol``; the message says what happened, in words."""

    def __init__(self, cause: str, message: str):
        super().__init__(message)
        self.cause = cause


class LoadError(Picklable, Exception):
    """The target could not be loaded in the worker (import error, no such attribute)."""

    def __init__(self, message: str, type_name: str = "", traceback: str = ""):
        super().__init__(message)
        self.type, self.traceback = type_name, traceback

    def missing_dependency(self, target: str) -> str | None:
        """The module the kernel needs that is not installed here, when that is why it did not load
        (its own module missing is a usage error, not this)."""
        import re

        found = re.search(r"No module named '([^']+)'", str(self))
        if found is None:
            return None
        module = target.rpartition(":")[0]
        missing = found.group(1)
        if not (module.endswith(".py") or "/" in module) and (module == missing or module.startswith(missing + ".")):
            return None
        return missing


class _Log:
    """Drains the worker's stdout/stderr pipe; keeps the first LOG_CAP bytes in ``path`` (or
    memory) — ``kept`` of them by the kernel's earlier processes — and the latest TAIL characters
    for error messages."""

    def __init__(self, pipe, path: Path | None, kept: int = 0):
        self.pipe, self.path, self.kept, self.dropped, self.tail = pipe, path, kept, 0, b""
        self.file = open(path, "ab") if path is not None else None
        self.thread = threading.Thread(target=self._drain, daemon=True, name="lrnnspec-worker-log")
        self.thread.start()

    def _drain(self):
        fd = self.pipe.fileno()
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            room = LOG_CAP - self.kept
            if room > 0 and self.file is not None:
                self.file.write(chunk[:room])
                self.file.flush()
            self.kept += min(room, len(chunk)) if room > 0 else 0
            self.dropped += max(0, len(chunk) - max(room, 0))
            self.tail = (self.tail + chunk)[-TAIL:]

    def close(self):
        self.thread.join(timeout=5)
        if self.file is not None:
            if self.dropped:
                self.file.write(f"\n[lrnnspec: {self.dropped} more bytes of output dropped (cap {LOG_CAP})]\n".encode())
            self.file.close()
        self.pipe.close()

    def last_words(self) -> str:
        text = self.tail.decode(errors="replace").strip()
        return f"; its last output: …{text[-500:]}" if text else ""


class _Template:
    """The harness's side of the template process (:mod:`.template`), started on first use, one per
    harness process, and ending with it (its channel closes)."""

    def __init__(self, path: list[str]):
        ours, theirs = socket.socketpair()
        self.proc = subprocess.Popen([sys.executable, "-m", "lrnnspec.harness.template", str(theirs.fileno())],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     cwd=tempfile.gettempdir(), pass_fds=(theirs.fileno(),),
                                     env=dict(os.environ, PYTHONPATH=os.pathsep.join(path)))
        theirs.close()
        self.sock, self.lock = ours, threading.Lock()
        wire.recv_frame(self.sock, time.monotonic() + START_TIMEOUT)

    def ask(self, request: dict, fds=()) -> dict:
        with self.lock:
            socket.send_fds(self.sock, [b"\0"], list(fds))
            wire.send_frame(self.sock, wire.encode(request))
            return wire.decode(wire.recv_frame(self.sock, time.monotonic() + START_TIMEOUT))


_TEMPLATES: list[_Template] = []


def _template(path: list[str]) -> _Template:
    if not _TEMPLATES or _TEMPLATES[0].proc.poll() is not None:
        _TEMPLATES[:] = [_Template(path)]
    return _TEMPLATES[0]


class _Forked:
    """A worker forked by the template, seen like a ``subprocess.Popen`` (the template reaps it)."""

    def __init__(self, template: _Template, pid: int):
        self.template, self.pid = template, pid

    def poll(self) -> int | None:
        return self.template.ask({"op": "wait", "pid": self.pid, "timeout": 0})["code"]

    def wait(self, timeout: float | None = None) -> int:
        code = self.template.ask({"op": "wait", "pid": self.pid, "timeout": 60.0 if timeout is None else timeout})["code"]
        if code is None:
            raise subprocess.TimeoutExpired("lrnnspec worker", timeout)
        return code


class KernelProcess:
    """One worker for one target. ``env``: variables set for the worker (replay restores a
    certificate's); ``log``: file the worker's output goes to (appended across restarts).

    ``start="fork"`` (the default; ``LRNNSPEC_WORKER_START`` overrides it) forks the worker from a
    template process (:mod:`.template`) that has imported torch and lrnnspec's worker and never any
    kernel's code: a clean state without paying for ``import torch`` at every start. ``start="spawn"`` runs a fresh
    interpreter; it is what ``env`` needs (variables a library reads when it is imported) and what
    platforms without fork get."""

    def __init__(self, target: str, device: str = "cpu", *, timeout: float = 60.0, env: dict | None = None,
                 log: str | Path | None = None, sys_path: list[str] | None = None, start: str | None = None):
        self.target, self.device, self.timeout = target, device, timeout
        self.env = dict(env or {})
        start = start or os.environ.get("LRNNSPEC_WORKER_START") or ("spawn" if self.env else "fork")
        if start not in ("fork", "spawn"):
            raise ValueError(f"start: must be 'fork' or 'spawn', got {start!r}")
        self.start_method = "spawn" if start == "fork" and not hasattr(os, "fork") else start
        self.log_path = None if log is None else Path(log)
        self.sys_path = list(sys.path if sys_path is None else sys_path)
        self.proc: subprocess.Popen | None = None
        self.environment: dict | None = None
        self.info: dict | None = None
        self.starts = 0
        self.log_kept = self.log_dropped_total = 0
        # where the time goes: starting workers, answering calls, and the kernel's own share of that
        self.cost = {"calls": 0, "start_seconds": 0.0, "call_seconds": 0.0, "kernel_seconds": 0.0}
        self._sock: socket.socket | None = None
        self._log: _Log | None = None
        self._workdir: str | None = None
        self._prefix = ""

    # --- lifecycle -----------------------------------------------------------------------------
    def _spawn(self):
        began = time.perf_counter()
        try:
            self._start_worker()
        finally:
            self.cost["start_seconds"] += time.perf_counter() - began

    def _start_worker(self):
        self._prefix = f"lrnnspec-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._segments = wire.Segments(self._prefix + "p")
        self._workdir = tempfile.mkdtemp(prefix="lrnnspec-worker-")
        ours, theirs = socket.socketpair()
        cwd = os.getcwd()
        # the harness's import path, its working directory last (never first: a folder there named
        # like an installed package — this repository's kernels/ — must not shadow it)
        path = list(dict.fromkeys([os.path.abspath(p) for p in self.sys_path if p not in ("", ".")] + [cwd]))
        if self.start_method == "fork":
            log, log_theirs = socket.socketpair()
            template = _template(path)
            reply = template.ask({"op": "fork", "workdir": self._workdir, "device": self.device, "prefix": self._prefix,
                                  "path": path, "environ": dict(os.environ)}, (theirs.fileno(), log_theirs.fileno()))
            log_theirs.close()
            self.proc = _Forked(template, reply["pid"])
        else:
            env = dict(os.environ, **self.env, LRNNSPEC_WORKER_DEVICE=self.device,
                       PYTHONPATH=os.pathsep.join(path), PYTHONUNBUFFERED="1")
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "lrnnspec.harness.worker", str(theirs.fileno()), self._prefix],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=self._workdir,
                env=env, pass_fds=(theirs.fileno(),), start_new_session=True)
            log = self.proc.stdout
        theirs.close()
        self._sock = ours
        self._log = _Log(log, self.log_path, kept=self.log_kept)
        self.starts += 1
        hello = self._receive(START_TIMEOUT, "starting")
        self.environment = hello["environment"]
        # importing the target is bounded like a call: a module that hangs at import is killed after timeout
        reply = self._exchange({"op": "load", "target": self.target}, self.timeout, "loading the kernel")
        if not reply.get("ok"):
            self.close()
            raise LoadError(reply.get("message", "the kernel could not be loaded"), reply.get("type", ""),
                            reply.get("traceback", ""))
        self.info = reply["info"]

    def start(self) -> "KernelProcess":
        if self.proc is None:
            self._spawn()
        return self

    def close(self) -> None:
        """Ask the worker to leave, then kill its process group whatever it does."""
        if self.proc is None:
            return
        try:
            if self.proc.poll() is None and self._sock is not None:
                wire.send_frame(self._sock, wire.encode({"op": "exit"}), timeout=2)
                self.proc.wait(timeout=2)
        except (OSError, subprocess.TimeoutExpired, ValueError):
            pass
        self._kill()

    def _kill(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:        # no group of its own yet (killed as it started): the process
                try:
                    os.kill(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            except PermissionError:
                pass
            proc.wait()
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._log is not None:
            self._log.close()
            self.log_kept = self._log.kept
            self.log_dropped_total += self._log.dropped
            self._log = None
        wire.Segments(self._prefix + "w").unlink_all()
        wire.Segments(self._prefix + "p").unlink_all()
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    # --- requests ------------------------------------------------------------------------------
    def request(self, tree: dict, share_inputs: bool = False, timeout: float | None = None) -> dict:
        """Send one request, return the decoded reply (tensors on the CPU). A worker that does not
        answer within ``timeout`` (default: the process's), dies, loses its device or sends an
        unreadable reply is killed and :class:`KernelDied` raised; the next request restarts it.

        ``share_inputs``: every tensor of the request goes through shared memory, and the reply's
        ``"request_after"`` holds the request as that memory reads after the call — the kernel's
        in-place changes to its inputs, seen by the harness itself."""
        self.start()
        began = time.perf_counter()
        try:
            reply = self._exchange(tree, self.timeout if timeout is None else timeout, "answering",
                                   shared_bytes=0 if share_inputs else wire.SHARED_BYTES, read_back=share_inputs)
        finally:
            self.cost["calls"] += 1
            self.cost["call_seconds"] += time.perf_counter() - began
        seconds = reply.get("seconds")
        if isinstance(seconds, (int, float)):
            self.cost["kernel_seconds"] += float(seconds)
        return reply

    def _exchange(self, tree: dict, timeout: float, doing: str, shared_bytes: int = wire.SHARED_BYTES,
                  read_back: bool = False) -> dict:
        segments = self._segments
        message = wire.encode(tree, segments, shared_bytes)
        try:
            try:
                wire.send_frame(self._sock, message, timeout=timeout)
            except OSError:
                pass   # it died or stopped reading; _receive says how
            reply = self._receive(timeout, doing)
            if read_back:
                reply["request_after"] = wire.decode(message, prefix=segments.prefix, take=True)
        finally:
            segments.unlink_created()
        if reply.get("kind") == "device_lost":
            self._kill()
        return reply

    def _receive(self, timeout: float, doing: str) -> dict:
        deadline = time.monotonic() + timeout
        try:
            data = wire.recv_frame(self._sock, deadline)
            return wire.decode(data, prefix=self._prefix + "w", take=True)
        except wire.Timeout:
            if self.proc.poll() is not None:
                raise self._died(doing) from None
            words = self._log.last_words() if self._log else ""
            self._kill()
            raise KernelDied("timeout", f"no answer in {timeout:g} s while {doing} (the kernel process was killed)"
                                        f"{words}") from None
        except (EOFError, OSError):
            raise self._died(doing) from None
        except wire.WireError as exc:
            self._kill()
            raise KernelDied("protocol", f"the kernel process sent an unreadable reply ({exc})") from None

    def _died(self, doing: str) -> KernelDied:
        proc = self.proc
        try:
            code = proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
        words = self._log.last_words() if self._log else ""
        self._kill()
        if code is None:
            return KernelDied("protocol", f"the kernel process closed its channel while {doing}{words}")
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return KernelDied("signal", f"the kernel process died with signal {-code} ({name}) while {doing}{words}")
        return KernelDied("exit", f"the kernel process exited with code {code} while {doing} (os._exit, exit() "
                                  f"from a thread, or a crash){words}")

    def log_stats(self) -> dict:
        """Bytes of worker output kept in the log and dropped beyond its cap, over every start."""
        live = self._log
        return {"kept": live.kept if live else self.log_kept,
                "dropped": self.log_dropped_total + (live.dropped if live else 0), "starts": self.starts}
