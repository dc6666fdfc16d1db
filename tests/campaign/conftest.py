"""Fixtures of the campaign tests: a small campaign file and one local Ray instance (2 CPUs) per
test module that asks for it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
KERNELS = HERE / "kernels.py"


def small_campaign(path: Path, *, planted: str = "output_scaled", extra: str = "", families=("retention",),
                   properties=("forward",), dtypes=("fp32", "bf16"), kernels: Path = KERNELS) -> Path:
    """3 built-in implementations and one planted-bug kernel × ``dtypes``: 8 jobs at the tiniest budget."""
    q = lambda xs: "[" + ", ".join(f'"{x}"' for x in xs) + "]"   # noqa: E731
    path.write_text(f"""[campaign]
name = "small"
profile = "dev"
dtypes = {q(dtypes)}
examples = 2
max_len = 16
properties = {q(properties)}

[[targets]]
backends = ["torch"]
families = {q(families)}

[[targets]]
target = "{kernels}:{planted}"
family = "linear_attention"
{extra}""")
    return path


def lrnnspec(*args, timeout=600, env=None, **kw):
    return subprocess.run([sys.executable, "-m", "lrnnspec", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env, **kw)


@pytest.fixture(scope="module")
def ray_cluster():
    """The GCS address of a local Ray instance with 2 CPUs (skipped when ray is not installed)."""
    pytest.importorskip("ray", reason="ray is not installed (pip install 'lrnnspec[cluster]')")
    proc = subprocess.Popen([sys.executable, str(HERE / "ray_head.py")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=HERE)
    try:
        address = proc.stdout.readline().strip()
        if not address:
            pytest.fail(f"the Ray instance did not start: {proc.stderr.read()[-3000:]}")
        HEADS[address] = proc.pid
        yield address
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


HEADS: dict[str, int] = {}          # a ray_cluster address → the pid of the process that started it


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _descends_from(pid: int | None, root: int) -> bool:
    while pid is not None and pid > 1:
        if pid == root:
            return True
        pid = _parent(pid)
    return False


def ray_workers_running(name: str = "certification_job", root: int | None = None) -> list[int]:
    """Pids of the Ray worker processes executing a ``name`` task now (Ray titles them ``ray::name``);
    with ``root``, only those of the Ray instance that process started (another pytest worker may run
    its own instance beside this one)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
        except OSError:
            continue
        if cmd.startswith(f"ray::{name}") and (root is None or _descends_from(int(entry), root)):
            pids.append(int(entry))
    # a process the job forks carries its worker's title until it execs: a worker's child is no worker
    return [pid for pid in pids if _parent(pid) not in pids]


def wait_for(predicate, timeout: float, step: float = 0.2):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return None
