"""Bad input to ``lrnnspec campaign run`` and conformance's execution options: one line naming the
field or option, exit 2 (usage) or 3 (could not run), and nothing written. The example campaign
file shipped in the repository reads."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from lrnnspec.cli import main

from .conftest import KERNELS, small_campaign

ROOT = Path(__file__).resolve().parents[2]


def _run(tmp_path, capsys, *args):
    out = tmp_path / "out"
    code = main(["campaign", "run", *map(str, args), "--out", str(out)])
    err = capsys.readouterr().err
    assert not out.exists(), f"something was written: {list(out.rglob('*'))}"
    return code, err


def _file(tmp_path, text: str) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(text)
    return path


TARGET = f'target = "{KERNELS}:correct"'


@pytest.mark.parametrize("text,field", [
    (f'[[targets]]\n{TARGET}\nfamily = "no_such_family"\n', "targets[0].family: unknown family"),
    ('[[targets]]\nbackends = ["torch"]\nfamilies = ["retention", "nope"]\n', "targets[0].families[1]: unknown family"),
    (f'[campaign]\ndtypes = ["fp32", "fp12"]\n[[targets]]\n{TARGET}\nfamily = "linear_attention"\n',
     "campaign.dtypes[1]: unknown dtype"),
    (f'[[targets]]\n{TARGET}\nfamily = "linear_attention"\ndtypes = ["int8"]\n', "targets[0].dtypes[0]: unknown dtype"),
    (f'[[targets]]\n{TARGET}\nfamily = "linear_attention"\n[[targets]]\n{TARGET}\nfamily = "linear_attention"\n',
     "targets[1]: duplicate job: linear_attention"),
    ('[[targets]]\nbackends = ["torch"]\nfamilies = ["retention"]\n[[targets]]\n'
     'target = "lrnnspec.impls.retention:chunk_retention"\nfamily = "retention"\n', "targets[1]: duplicate job"),
    (f'[[targets]]\n{TARGET}\nfamily = "linear_attention"\nfamilly = "x"\n', "targets[0].familly: unknown field"),
    (f'[campaign]\nprofile = "fast"\n[[targets]]\n{TARGET}\nfamily = "linear_attention"\n',
     "campaign.profile: must be one of dev, ci, certify"),
    (f'[[targets]]\n{TARGET}\nfamily = "linear_attention"\nproperties = ["forwards"]\n',
     "targets[0].properties[0]: unknown property"),
    (f'[[targets]]\n{TARGET}\nfamily = "linear_attention"\nrequire = ["teleportation"]\n',
     "targets[0].require[0]: unknown feature"),
    ('[[targets]]\nbackends = ["cuda-magic"]\n', "targets[0].backends[0]: unknown backend"),
    ('[[targets]]\ntarget = "no_colon_here"\nfamily = "retention"\n', "targets[0].target: TARGET must be"),
    (f'[[targets]]\n{TARGET}\nbackends = ["torch"]\nfamily = "linear_attention"\n', "targets[0]: names either"),
    ('[campaign]\nname = "empty"\n', "targets: a campaign names at least one"),
    ('[campaign\nname = "x"', "not valid TOML"),
    (f'[[targets]]\n{TARGET}\nfamily = "linear_attention"\nexamples = 0\n', "targets[0].examples: must be a positive"),
])
def test_a_bad_campaign_file_names_the_field_and_writes_nothing(tmp_path, capsys, text, field):
    code, err = _run(tmp_path, capsys, _file(tmp_path, text))
    assert code == 2 and field in err, err
    assert err.count("\n") == 1 and err.startswith("lrnnspec campaign")


def test_a_missing_campaign_file_is_a_usage_error(tmp_path, capsys):
    code, err = _run(tmp_path, capsys, tmp_path / "nope.toml")
    assert code == 2 and "CAMPAIGN: cannot read the campaign file" in err


def test_an_unknown_executor_is_a_usage_error(tmp_path, capsys):
    code, err = _run(tmp_path, capsys, small_campaign(tmp_path / "s.toml"), "--executor", "slurm")
    assert code == 2 and "--executor: must be one of local, ray" in err


@pytest.mark.parametrize("address", ["not an address", "ray://host-without-port", "http://h:1"])
def test_a_malformed_ray_address_is_a_usage_error(tmp_path, capsys, address):
    code, err = _run(tmp_path, capsys, small_campaign(tmp_path / "s.toml"), "--executor", "ray", "--address", address)
    assert code == 2 and "--address: must be auto, HOST:PORT" in err


def test_an_address_needs_the_ray_executor(tmp_path, capsys):
    code, err = _run(tmp_path, capsys, small_campaign(tmp_path / "s.toml"), "--address", "auto")
    assert code == 2 and "--address: applies to --executor ray" in err


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_ray_cluster_cannot_run_and_writes_nothing(tmp_path, capsys):
    pytest.importorskip("ray", reason="ray is not installed (pip install 'lrnnspec[cluster]')")
    port = _closed_port()
    code, err = _run(tmp_path, capsys, small_campaign(tmp_path / "s.toml"), "--executor", "ray",
                     "--address", f"127.0.0.1:{port}")
    assert code == 3 and f"--address: no Ray cluster answers at 127.0.0.1:{port}" in err, err


def test_an_unreachable_redis_database_cannot_run_and_writes_nothing(tmp_path, capsys):
    pytest.importorskip("redis", reason="the redis client is not installed (pip install 'lrnnspec[cluster]')")
    port = _closed_port()
    code, err = _run(tmp_path, capsys, small_campaign(tmp_path / "s.toml"), "--database",
                     f"redis://127.0.0.1:{port}/0")
    assert code == 3 and f"--database: no Redis server answers at redis://127.0.0.1:{port}/0" in err, err


def test_conformance_refuses_bad_execution_options_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "c"
    assert main(["conformance", "--family", "retention", "--executor", "dask", "--out", str(out)]) == 2
    assert "--executor: must be one of local, ray" in capsys.readouterr().err
    assert not list((out / "certificates").glob("*")) if (out / "certificates").exists() else True
    assert not (out / "conformance.md").exists()


def test_the_example_campaign_reads_and_covers_every_builtin_implementation():
    from lrnnspec.campaign.definition import load
    from lrnnspec.impls.registry import backend_available, implementations

    campaign = load(ROOT / "campaigns" / "example.toml")
    backends = tuple(b for b in ("torch", "triton") if backend_available(b))
    builtins = {i.target for i in implementations(backends=backends, kinds=("sequence", "dag"))}
    assert builtins <= {j.target for j in campaign.jobs}
    assert len({j.stem for j in campaign.jobs}) == len(campaign.jobs)
    if backend_available("fla-ref"):
        assert any(j.target.startswith("fla.ops.") for j in campaign.jobs)
