"""One example database for the whole cluster: a real ``redis-server`` started by the test (``.ci/run``
installs it from the OS packages; skipped, saying why, when it cannot start). A counterexample found
by one job is replayed first by a later job of that target in another process, and its certificate
says how many stored examples it replayed."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time

import pytest

from .conftest import KERNELS, lrnnspec


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    pytest.importorskip("redis", reason="the redis client is not installed (pip install 'lrnnspec[cluster]')")
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server; .ci/run does)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    folder = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(folder)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    import redis

    client = redis.Redis(host="127.0.0.1", port=port)
    try:
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.exceptions.ConnectionError:
                if proc.poll() is not None:
                    pytest.skip(f"redis-server could not start: {proc.stdout.read()[-500:]}")
                time.sleep(0.1)
        else:
            pytest.skip("redis-server did not answer within 10 s")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_the_redis_store_keeps_order_drops_and_caps(redis_url):
    from lrnnspec.harness.examples import MAX_PER_KEY, ExampleStore

    store = ExampleStore(redis_url)
    key = ("linear_attention", "pkg:fn-order-test", "forward", "fp32")
    cases = [{"T": t} for t in range(MAX_PER_KEY + 3)]
    for case in cases:
        store.save(*key, case)
    assert store.fetch(*key) == cases[-MAX_PER_KEY:]                  # newest last, capped
    store.save(*key, cases[-MAX_PER_KEY])                               # saved again: now the newest
    assert store.fetch(*key)[-1] == cases[-MAX_PER_KEY]
    store.drop(*key, cases[-1])
    assert cases[-1] not in store.fetch(*key) and len(store.fetch(*key)) == MAX_PER_KEY - 1
    assert ExampleStore(redis_url).fetch(*key) == store.fetch(*key)     # another client, the same store


def _campaign(path, seed: int):
    path.write_text(f"""[campaign]
name = "redis"
profile = "dev"
dtypes = ["fp32"]
seeds = [{seed}]
examples = 3
max_len = 16
properties = ["forward"]

[[targets]]
target = "{KERNELS}:output_scaled"
family = "linear_attention"
""")
    return path


def test_a_counterexample_found_by_one_job_is_replayed_by_the_next_in_another_process(tmp_path, redis_url):
    first = lrnnspec("campaign", "run", _campaign(tmp_path / "a.toml", 0), "--database", redis_url, "--out",
                     tmp_path / "a", "--json")
    assert first.returncode == 1, first.stderr[-3000:]
    job = json.loads(first.stdout)["jobs"][0]
    assert job["verdict"] == "FAILED" and job["replayed"] == 0
    cert = json.loads((tmp_path / "a" / "certificates" / f"{job['stem']}.json").read_text())
    assert cert["replayed"] == 0

    # another process, another seed, another output folder: only the Redis server is shared
    second = lrnnspec("campaign", "run", _campaign(tmp_path / "b.toml", 1), "--database", redis_url, "--out",
                      tmp_path / "b", "--json")
    assert second.returncode == 1, second.stderr[-3000:]
    job = json.loads(second.stdout)["jobs"][0]
    assert job["verdict"] == "FAILED" and job["replayed"] >= 1
    cert = json.loads((tmp_path / "b" / "certificates" / f"{job['stem']}.json").read_text())
    forward = next(v for v in cert["verdicts"] if v["property"] == "forward")
    assert cert["replayed"] >= 1 and forward["status"] == "fail"
    assert "replayed from the example database" in forward["counterexample"]["message"]
    assert not (tmp_path / "b" / ".lrnnspec-examples").exists()       # nothing went to a local directory
    assert "stored counterexamples replayed first" in (tmp_path / "b" / "certificates" /
                                                       f"{job['stem']}.md").read_text()
