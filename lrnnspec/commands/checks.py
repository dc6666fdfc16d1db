"""Validators shared by the commands: every input is checked before any work starts, and a broken
rule raises :class:`~lrnnspec.errors.UsageError` (exit 2) or :class:`~lrnnspec.errors.CannotRun`
(exit 3) naming the option. Nothing here imports torch unless a check needs it (``--device cuda``):
a usage error costs the interpreter's start, not torch's.

argparse ``type=`` functions (:func:`positive_int` …) raise ``ArgumentTypeError``: argparse then
prints ``lrnnspec <command>: error: --option: <rule> (got '…')``.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import tempfile
from pathlib import Path

from lrnnspec.errors import CannotRun, UsageError, shorten

DTYPES = ("fp32", "fp16", "bf16", "fp64")      # = lrnnspec.harness.kernel.TORCH_DTYPES (tests/cli checks)
PROFILES = ("dev", "ci", "certify")            # = lrnnspec.PROFILE_EXAMPLES
DEVICE = re.compile(r"^(cpu|cuda|mps|xpu|meta)(:\d{1,3})?$")
MAX_OPTION_CHARS = 4096                        # longer option values are refused, not echoed


# --- argparse types --------------------------------------------------------------------------------
def _int(text: str, low: int, rule: str) -> int:
    try:
        if not text.strip().lstrip("+-").isascii():     # int() reads '٣' as 3: only ASCII digits here
            raise ValueError(text)
        value = int(text, 10)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"must be {rule} (got {shorten(text)})") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be {rule} (got {shorten(text)})")
    return value


def positive_int(text: str) -> int:
    return _int(text, 1, "a positive integer")


def nonnegative_int(text: str) -> int:
    return _int(text, 0, "an integer ≥ 0")


def seed(text: str) -> int:
    value = _int(text, 0, "an integer in [0, 2**32)")
    if value >= 2 ** 32:
        raise argparse.ArgumentTypeError(f"must be an integer in [0, 2**32) (got {shorten(text)})")
    return value


def positive_seconds(text: str) -> float:
    try:
        value = float(text) if text.isascii() else math.nan
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive, finite number of seconds (got {shorten(text)})")
    return value


# --- values ---------------------------------------------------------------------------------------
def text_option(option: str, text: str) -> str:
    if len(text) > MAX_OPTION_CHARS:
        raise UsageError(option, f"must be at most {MAX_OPTION_CHARS} characters", f"{len(text)} characters",
                         has_got=True)
    if "\0" in text:
        raise UsageError(option, "must not contain a NUL character", text)
    return text


def name_list(option: str, text: str, known=None, what: str = "name") -> list[str]:
    """A comma-separated list: no empty item, no repeat, each in ``known`` (when given), not empty."""
    text_option(option, text)
    items = [t.strip() for t in text.split(",")]
    if not text.strip():
        raise UsageError(option, f"must name at least one {what}" + (f" ({', '.join(known)})" if known else ""), text)
    if any(not t for t in items):
        raise UsageError(option, "must be a comma-separated list without empty items", text)
    repeated = sorted({t for t in items if items.count(t) > 1})
    if repeated:
        raise UsageError(option, f"names {', '.join(repeated)} more than once", text)
    if known is not None:
        unknown = [t for t in items if t not in known]
        if unknown:
            raise UsageError(option, f"unknown {what} {', '.join(map(repr, unknown))}; known: {', '.join(known)}", text)
    return items


def dtypes(text: str, option: str = "--dtype") -> list[str]:
    return name_list(option, text, DTYPES, "dtype")


def pairs(items: list[str], option: str, form: str) -> dict[str, str]:
    """``NAME=VALUE`` items; a NAME given twice is refused (the last would silently win)."""
    out: dict[str, str] = {}
    for item in items:
        text_option(option, item)
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise UsageError(option, f"must be {form}", item)
        if key.strip() in out:
            raise UsageError(option, f"gives {key.strip()!r} twice ({out[key.strip()]!r} and {value.strip()!r}); "
                                     f"give it once", item)
        out[key.strip()] = value.strip()
    return out


def contracts(items: list[str], requested: list[str]) -> dict[str, str]:
    """``--contract DTYPE=CONTRACT``: DTYPE one of the requested dtypes, CONTRACT a precision contract."""
    from lrnnspec.spec.contract import PrecisionContract
    from lrnnspec.spec.errors import SpecError

    found = pairs(items, "--contract", "DTYPE=CONTRACT (e.g. fp32=tf32)")
    for dtype, contract in found.items():
        if dtype not in DTYPES:
            raise UsageError("--contract", f"DTYPE must be one of {', '.join(DTYPES)}", f"{dtype}={contract}")
        if dtype not in requested:
            raise UsageError("--contract", f"{dtype} is not among the requested dtypes ({', '.join(requested)}); "
                                           f"add it to --dtype or drop the contract", f"{dtype}={contract}")
        try:
            PrecisionContract.parse(contract)
        except SpecError as exc:
            raise UsageError("--contract", f"{dtype}: not a precision contract ({exc})", contract) from None
    return found


def device(text: str, option: str = "--device") -> str:
    """A torch device name; ``cuda`` on a machine without CUDA is :class:`CannotRun` (exit 3)."""
    text_option(option, text)
    if not DEVICE.match(text):
        raise UsageError(option, "must be a torch device: cpu, cuda, cuda:N (or mps, xpu)", text)
    kind, _, index = text.partition(":")
    if kind == "cpu":
        if index:
            raise UsageError(option, "the CPU device takes no index: use cpu", text)
        return text
    import torch

    if kind == "cuda":
        if not torch.cuda.is_available():
            raise CannotRun(option, f"no CUDA device is available here (torch {torch.__version__}, built with CUDA "
                                    f"{torch.version.cuda or 'none'}); use --device cpu or a machine with a GPU", text)
        if index and int(index) >= torch.cuda.device_count():
            raise CannotRun(option, f"this machine has {torch.cuda.device_count()} CUDA device(s)", text)
        return text
    backend = getattr(torch.backends, kind, None) if kind != "xpu" else getattr(torch, "xpu", None)
    if kind == "meta" or backend is None or not backend.is_available():
        raise CannotRun(option, f"device {kind!r} is not available here", text)
    return text


def out_dir(path: str, option: str = "--out") -> Path:
    """``--out``: a directory that exists or can be made, where a file can be written (tried: a path
    under /proc, a read-only folder, a name too long, an existing file are refused here, before
    any work)."""
    text_option(option, path)
    if not path.strip():
        raise UsageError(option, "must name a directory", path)
    folder = Path(path)
    try:
        if folder.exists() and not folder.is_dir():
            raise UsageError(option, "must be a directory; it names an existing file", path)
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".lrnnspec-probe-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except FileExistsError:
        raise UsageError(option, "must be a directory; a file is in the way", path) from None
    except OSError as exc:
        raise UsageError(option, f"must be, or become, a writable directory ({exc.strerror or exc})", path) from None
    return folder


def memory_fits(option: str, need_bytes: float, what: str) -> None:
    """Refuse what cannot fit: more than half of this machine's memory (CannotRun, exit 3, with the estimate)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 8 << 30
    if need_bytes > total / 2:
        raise CannotRun(option, f"{what} needs about {_bytes(need_bytes)}, more than half of this machine's "
                                f"{_bytes(total)} of memory; use smaller sizes")


def _bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} PiB"


class OutLock:
    """One run at a time in an ``--out`` directory: two runs there would overwrite each other's
    certificate and interleave their progress lines. The second refuses (exit 2) naming the first's
    process. The lock (``fcntl.flock`` on ``.lrnnspec.lock``) ends with the process however it ends;
    a run that ends normally also removes the file, so a refused or finished run leaves nothing behind."""

    def __init__(self, folder: Path, option: str = "--out"):
        import fcntl

        self.path = Path(folder) / ".lrnnspec.lock"
        while True:
            self.fh = open(self.path, "a+")
            try:
                fcntl.flock(self.fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                self.fh.seek(0)
                holder = self.fh.read().strip() or "another process"
                self.fh.close()
                raise UsageError(option, f"another lrnnspec run is writing into this directory ({holder}); wait "
                                         f"for it or choose another --out", str(folder)) from None
            try:                # the holder may have removed the file between our open and our lock
                if os.stat(self.path).st_ino == os.fstat(self.fh.fileno()).st_ino:
                    break
            except FileNotFoundError:
                pass
            self.fh.close()
        self.fh.seek(0)
        self.fh.truncate()
        self.fh.write(f"pid {os.getpid()}")
        self.fh.flush()

    def release(self) -> None:
        if not self.fh.closed:
            try:
                self.path.unlink()
            except OSError:
                pass
            self.fh.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()
