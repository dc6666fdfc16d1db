"""The example database: counterexamples found in one run are replayed first in the next.

As Hypothesis users expect of its example database, a failure found once is tried again before
anything new is drawn — after a fix, the case that broke the kernel is the first one checked. One
JSON file per (family, kernel, property, dtype) under the database directory holds the shrunk
cases that failed there (newest last). A stored case that still fails is the verdict's
counterexample at once; one that passes now is dropped from the store. Writes are atomic, so two
certifications sharing a directory never read half a file.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from lrnnspec.atomic import write_text

MAX_PER_KEY = 10


class ExampleStore:
    def __init__(self, directory: str | Path):
        self.dir = Path(directory)
        self.replayed = 0          # stored cases tried, over every key, in this run

    def _path(self, family: str, target: str, prop: str, dtype: str) -> Path:
        key = hashlib.sha256(f"{family}\0{target}\0{prop}\0{dtype}".encode()).hexdigest()[:24]
        return self.dir / f"{family}-{prop}-{dtype}-{key}.json"

    def fetch(self, family: str, target: str, prop: str, dtype: str) -> list[dict]:
        path = self._path(family, target, prop, dtype)
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return []
        return [c for c in data.get("cases", []) if isinstance(c, dict)]

    def _write(self, family: str, target: str, prop: str, dtype: str, cases: list[dict]) -> None:
        path = self._path(family, target, prop, dtype)
        if not cases:
            path.unlink(missing_ok=True)
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        write_text(path, json.dumps({"family": family, "target": target, "property": prop, "dtype": dtype,
                                   "cases": cases[-MAX_PER_KEY:]}, indent=1))

    def save(self, family: str, target: str, prop: str, dtype: str, case: dict) -> None:
        cases = [c for c in self.fetch(family, target, prop, dtype) if c != case]
        self._write(family, target, prop, dtype, cases + [case])

    def drop(self, family: str, target: str, prop: str, dtype: str, case: dict) -> None:
        cases = self.fetch(family, target, prop, dtype)
        if case in cases:
            self._write(family, target, prop, dtype, [c for c in cases if c != case])
