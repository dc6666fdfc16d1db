"""Progress of a campaign, as it runs.

On a terminal (stdout and stderr both are one) a live status line on stderr — jobs done / running /
failed of the total, elapsed, ETA — redrawn every second, with each failure printed above it by
name as it comes. Anywhere else (CI, a pipe, a file) one plain line per job on stderr, and nothing
redrawn. stdout is left to the command's result (``--json`` stays clean).
"""

from __future__ import annotations

import sys
import threading
import time

from .jobs import JobResult


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60:02d}:{rest % 60:02d}"


class Progress:
    def __init__(self, total: int, slots: int, *, stream=None, live: bool | None = None, skipped: int = 0):
        self.stream = stream or sys.stderr
        self.live = (sys.stdout.isatty() and self.stream.isatty()) if live is None else live
        self.total, self.slots = total, max(slots, 1)
        self.skipped = skipped
        self.done = 0
        self.failures: list[str] = []
        self.problems = 0            # could not run here, harness errors, lost
        self.start = time.perf_counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker = None

    # --- the line --------------------------------------------------------------------------------
    def status(self) -> str:
        elapsed = time.perf_counter() - self.start
        remaining = self.total - self.done
        running = min(self.slots, remaining)
        eta = "—" if not self.done else _clock(elapsed / self.done * remaining)
        text = (f"jobs {self.done}/{self.total} done · {running} running · {len(self.failures)} failed"
                f"{f' · {self.problems} could not run' if self.problems else ''} · {_clock(elapsed)} elapsed · "
                f"ETA {eta}")
        if self.failures:
            text += " · failing: " + ", ".join(self.failures[-3:]) + (" …" if len(self.failures) > 3 else "")
        return text

    def _draw(self) -> None:
        width = 200
        self.stream.write("\r\033[K" + self.status()[:width])
        self.stream.flush()

    def __enter__(self):
        if self.live:
            self._draw()
            self._ticker = threading.Thread(target=self._tick, daemon=True)
            self._ticker.start()
        return self

    def _tick(self) -> None:
        while not self._stop.wait(1.0):
            with self._lock:
                self._draw()

    def __exit__(self, *exc):
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=2)
        if self.live:
            with self._lock:
                self._draw()
                self.stream.write("\n")
                self.stream.flush()
        return False

    # --- events ------------------------------------------------------------------------------------
    def say(self, line: str) -> None:
        """A line of its own (above the live status, if there is one)."""
        with self._lock:
            if self.live:
                self.stream.write("\r\033[K")
            self.stream.write(line + "\n")
            if self.live:
                self._draw()
            self.stream.flush()

    def job_done(self, result: JobResult) -> None:
        self.done += 1
        if result.failed:
            self.failures.append(result.job.label.rpartition(" seed")[0] if result.job.label else result.job.stem)
        elif result.status != "certificate" or result.verdict in ("could not run here", "harness error"):
            self.problems += 1
        width = len(str(self.total))
        where = f" on {result.host} pid {result.pid}" if result.host else ""
        line = f"[{self.done:>{width}}/{self.total}] {result.verdict:<18} {result.job.label or result.job.stem} " \
               f"({result.seconds:.1f} s{where})"
        if result.failing:
            line += ": " + ", ".join(result.failing)
        elif result.message:
            line += ": " + " ".join(result.message.split())[:300]
        if self.live and not (result.failed or result.message):
            with self._lock:                     # a pass only moves the status line on
                self._draw()
            return
        self.say(line)
