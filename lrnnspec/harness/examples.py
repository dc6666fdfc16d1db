"""The example database: counterexamples found in one run are replayed first in the next.

As Hypothesis users expect of its example database, a failure found once is tried again before
anything new is drawn — after a fix, the case that broke the kernel is the first one checked. The
store keeps, per (family, kernel, property, dtype), the shrunk cases that failed there (newest
last, at most :data:`MAX_PER_KEY`). A stored case that still fails is the verdict's counterexample
at once; one that passes now is dropped from the store.

Where it lives (``ExampleStore(location)``):

- a directory (a shared file system for a cluster): one JSON file per key; writes are atomic, so
  two certifications sharing the directory never read half a file;
- ``redis://host:port/N``: Hypothesis's own :class:`hypothesis.extra.redis.RedisExampleDatabase`
  on that Redis server, one set per key, each member a case with the time it was stored (so the
  order survives); every job of a campaign, on any node, reads and writes the same server. It
  needs the ``redis`` package (``pip install 'lrnnspec[cluster]'``).
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from lrnnspec.atomic import write_text

MAX_PER_KEY = 10
REDIS_PREFIX = b"lrnnspec-example:"


def is_redis(location) -> bool:
    return isinstance(location, str) and location.startswith(("redis://", "rediss://", "unix://"))


def redis_client(url: str, timeout: float = 5.0):
    """A connected client for ``url``; raises ``ConnectionError``/``ValueError`` saying why not."""
    try:
        import redis
    except ImportError:
        raise ValueError("a redis:// example database needs the 'redis' package: pip install "
                         "'lrnnspec[cluster]'") from None
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=30)
    try:
        client.ping()
    except redis.exceptions.RedisError as exc:
        raise ConnectionError(f"no Redis server answers at {url}: {exc}") from None
    return client


class _Directory:
    def __init__(self, directory):
        self.dir = Path(directory)

    def _path(self, key: str, name: str) -> Path:
        return self.dir / f"{name}-{key}.json"

    def read(self, key: str, name: str) -> list[dict]:
        try:
            data = json.loads(self._path(key, name).read_text())
        except (OSError, ValueError):
            return []
        return [c for c in data.get("cases", []) if isinstance(c, dict)]

    def write(self, key: str, name: str, meta: dict, cases: list[dict]) -> None:
        path = self._path(key, name)
        if not cases:
            path.unlink(missing_ok=True)
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        write_text(path, json.dumps({**meta, "cases": cases}, indent=1))


class _Hypothesis:
    """Any Hypothesis ``ExampleDatabase`` (here: Redis): a key is a set of byte strings; each member
    is ``{"t": nanoseconds stored, "case": ...}`` as JSON, so the store's order is kept."""

    def __init__(self, db):
        self.db = db

    def _members(self, key: str) -> list[tuple[int, dict, bytes]]:
        out = []
        for raw in self.db.fetch(REDIS_PREFIX + key.encode()):
            try:
                item = json.loads(raw)
                out.append((int(item["t"]), item["case"], raw))
            except (ValueError, KeyError, TypeError):
                continue
        return sorted(out, key=lambda m: m[0])

    def read(self, key: str, name: str) -> list[dict]:
        return [case for _, case, _ in self._members(key) if isinstance(case, dict)]

    def write(self, key: str, name: str, meta: dict, cases: list[dict]) -> None:
        """Make the set hold ``cases`` in this order: the members that already stand in order are kept,
        the others removed, and the rest of ``cases`` added after them."""
        members = self._members(key)
        keep = 0
        while keep < min(len(members), len(cases)) and members[keep][1] == cases[keep]:
            keep += 1
        db_key = REDIS_PREFIX + key.encode()
        for _, _, raw in members[keep:]:
            self.db.delete(db_key, raw)
        stamp = max([time.time_ns()] + [t + 1 for t, _, _ in members[:keep]])
        for i, case in enumerate(cases[keep:]):
            self.db.save(db_key, json.dumps({"t": stamp + i, "case": case}, sort_keys=True).encode())


class ExampleStore:
    """``location``: a directory, or ``redis://host:port/N`` (see the module docstring)."""

    def __init__(self, location: "str | Path"):
        self.location = str(location)
        if is_redis(location):
            from hypothesis.extra.redis import RedisExampleDatabase

            self._backend = _Hypothesis(RedisExampleDatabase(redis_client(location)))
            self.dir = None
        else:
            self._backend = _Directory(location)
            self.dir = Path(location)
        self.replayed = 0          # stored cases tried, over every key, in this run

    @staticmethod
    def _key(family: str, target: str, prop: str, dtype: str) -> tuple[str, str]:
        digest = hashlib.sha256(f"{family}\0{target}\0{prop}\0{dtype}".encode()).hexdigest()[:24]
        return digest, f"{family}-{prop}-{dtype}"

    def _path(self, family: str, target: str, prop: str, dtype: str) -> Path:
        """The directory store's file for a key."""
        key, name = self._key(family, target, prop, dtype)
        return self._backend._path(key, name)

    def fetch(self, family: str, target: str, prop: str, dtype: str) -> list[dict]:
        return self._backend.read(*self._key(family, target, prop, dtype))

    def _write(self, family: str, target: str, prop: str, dtype: str, cases: list[dict]) -> None:
        key, name = self._key(family, target, prop, dtype)
        self._backend.write(key, name, {"family": family, "target": target, "property": prop, "dtype": dtype},
                            cases[-MAX_PER_KEY:])

    def save(self, family: str, target: str, prop: str, dtype: str, case: dict) -> None:
        cases = [c for c in self.fetch(family, target, prop, dtype) if c != case]
        self._write(family, target, prop, dtype, cases + [case])

    def drop(self, family: str, target: str, prop: str, dtype: str, case: dict) -> None:
        cases = self.fetch(family, target, prop, dtype)
        if case in cases:
            self._write(family, target, prop, dtype, [c for c in cases if c != case])
