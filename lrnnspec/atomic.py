"""Atomic file writes: a reader (or a run interrupted mid-write) sees the old file or the new one,
never half of one. Every certificate, report and cache lrnnspec writes goes through here."""

from __future__ import annotations

import os
import threading
from pathlib import Path


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder and one ``os.replace``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name[:200]}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
