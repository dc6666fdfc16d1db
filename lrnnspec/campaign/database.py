"""``--database``: the example database every job of a campaign shares (:mod:`lrnnspec.harness.examples`).

A directory — absolute, so that every node opens the same one; on a cluster it must be on a file
system they all mount — or ``redis://HOST:PORT/N`` (a Redis server every node reaches; Hypothesis's
``RedisExampleDatabase``), checked by connecting before any job runs; ``none`` for no database.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from lrnnspec.errors import CannotRun, UsageError


def resolve(value: str | None, default: "Path | None", *, option: str = "--database") -> str | None:
    """The location jobs get: ``value`` checked (a Redis server is pinged), or ``default`` when None."""
    from lrnnspec.harness.examples import is_redis, redis_client

    if value is None:
        return None if default is None else str(Path(default).resolve())
    if value == "none":
        return None
    if is_redis(value):
        url = urlparse(value)
        if url.scheme != "unix" and not url.hostname:
            raise UsageError(option, "must be a directory, redis://HOST:PORT/N or none", value)
        try:
            redis_client(value).close()
        except ValueError as exc:
            raise CannotRun(option, str(exc), value) from None
        except ConnectionError as exc:
            raise CannotRun(option, f"{exc}; start one (redis-server) or pass a directory", value) from None
        return value
    if "://" in value:
        raise UsageError(option, "must be a directory, redis://HOST:PORT/N or none", value)
    path = Path(value).resolve()
    if path.exists() and not path.is_dir():
        raise UsageError(option, "is a file, not a directory", value)
    return str(path)
