"""`lrnnspec certify` as a user runs it: exit 0 certified, 1 not certified, 2 usage or import error;
the certificate files are written."""

import json
import os

import pytest

from lrnnspec.cli import main

PLANTED = os.path.join(os.path.dirname(__file__), "certifier", "planted.py")


def test_correct_kernel_is_certified_and_certificate_written(tmp_path, capsys):
    code = main(["certify", "lrnnspec.impls.simple_gla:chunk_simple_gla", "--family", "simple_gla",
                 "--examples", "3", "--out", str(tmp_path)])
    assert code == 0, capsys.readouterr().out
    (cert,) = [p for p in tmp_path.glob("*.json")]
    data = json.loads(cert.read_text())
    assert data["certified"] and data["kernel"]["sha256"] != "unavailable"
    statuses = {v["property"]: v["status"] for v in data["verdicts"]}
    assert statuses["forward"] == "pass" and statuses["negative_eigenvalues"] == "not_applicable"
    assert (tmp_path / "progress.jsonl").read_text().count("\n") == len(data["verdicts"])


def test_planted_bug_from_a_file_path_is_not_certified(capsys):
    code = main(["certify", f"{PLANTED}:chunk_simple_gla_scale_ignored", "--family", "simple_gla",
                 "--examples", "10"])
    out = capsys.readouterr().out
    assert code == 1 and "NOT CERTIFIED" in out and "forward [fp32]" in out


@pytest.mark.parametrize("argv, message", [
    (["certify", "no_such_module:fn", "--family", "simple_gla"], "cannot import"),
    (["certify", "lrnnspec.impls", "--family", "simple_gla"], "TARGET must be"),
    (["certify", "lrnnspec.impls:no_such_fn", "--family", "simple_gla"], "no attribute"),
    (["certify", "lrnnspec.impls:chunk_gla", "--family", "no_such_family"], "unknown family"),
    (["certify", "lrnnspec.impls:chunk_gla", "--family", "plstm"], "pass convention 'chain' or 'grid'"),
    (["certify", "lrnnspec.impls:chunk_gla", "--family", "gla", "--dtype", "fp8"], "--dtype"),
])
def test_usage_errors_exit_2_naming_the_problem(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_replay_reproduces_the_stored_counterexample(tmp_path, capsys):
    assert main(["certify", f"{PLANTED}:chunk_simple_gla_scale_ignored", "--family", "simple_gla", "--examples", "10",
                 "--out", str(tmp_path)]) == 1
    (cert,) = tmp_path.glob("*.json")
    capsys.readouterr()
    assert main(["replay", str(cert)]) == 1
    assert "reproduced: output error" in capsys.readouterr().out


def test_replay_of_a_clean_certificate_and_of_garbage(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["replay", str(bad)]) == 2
    assert "CERT: is not valid JSON" in capsys.readouterr().err


def test_conformance_writes_the_matrix_and_certificates(tmp_path, capsys):
    assert main(["conformance", "--family", "retention", "--examples", "2", "--out", str(tmp_path)]) == 0
    text = (tmp_path / "conformance.md").read_text()
    for form in ("recurrent_retention", "chunk_retention", "parallel_retention"):
        assert f"`{form}`" in text
    assert len(list((tmp_path / "certificates").glob("*.json"))) == 3
    assert main(["conformance", "--family", "no_such_family", "--out", str(tmp_path)]) == 2


def test_conformance_progress_log_holds_only_the_latest_run(tmp_path):
    args = ["conformance", "--family", "retention", "--examples", "1", "--out", str(tmp_path)]
    assert main(args) == 0 and main(args) == 0
    verdicts = sum(len(json.loads(p.read_text())["verdicts"]) for p in (tmp_path / "certificates").glob("*.json"))
    assert (tmp_path / "certificates" / "progress.jsonl").read_text().count("\n") == verdicts


def test_conformance_names_a_backend_whose_package_is_missing(tmp_path, capsys, monkeypatch):
    from lrnnspec.impls import registry

    monkeypatch.setitem(registry.BACKEND_REQUIRES, "triton", ("no_such_package_xyz", "lrnnspec[kernels]"))
    assert main(["conformance", "--family", "simple_gla", "--backend", "triton", "--out", str(tmp_path)]) == 2
    assert "backend 'triton' needs the 'no_such_package_xyz' package" in capsys.readouterr().err
    # by default the missing backend is skipped, and said so
    assert main(["conformance", "--family", "retention", "--examples", "1", "--out", str(tmp_path)]) == 0
    assert "skipping backend 'triton'" in capsys.readouterr().err


def test_a_file_inside_a_package_is_imported_with_its_relative_imports(tmp_path, capsys):
    pkg = tmp_path / "mykernels"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "_core.py").write_text("from lrnnspec.impls.simple_gla import chunk_simple_gla as core\n")
    (pkg / "ops.py").write_text("from ._core import core\n\n\ndef my_simple_gla(*args, **kwargs):\n"
                                "    return core(*args, **kwargs)\n")
    assert main(["certify", f"{pkg / 'ops.py'}:my_simple_gla", "--family", "simple_gla", "--examples", "2"]) == 0
    assert "CERTIFIED" in capsys.readouterr().out


def test_conformance_in_worker_processes_gives_the_same_matrix(tmp_path):
    args = ["conformance", "--family", "retention", "--examples", "2"]
    assert main(args + ["--out", str(tmp_path / "one")]) == 0
    assert main(args + ["--jobs", "2", "--out", str(tmp_path / "two")]) == 0

    def table(d):   # the rows without the time column
        return [line.rsplit("|", 2)[0] for line in (d / "conformance.md").read_text().splitlines()
                if line.startswith("| retention")]
    assert table(tmp_path / "one") == table(tmp_path / "two") and len(table(tmp_path / "one")) == 3
    assert len(list((tmp_path / "two" / "certificates").glob("*.json"))) == 3


@pytest.mark.parametrize("argv,message", [
    (["--jobs", "0"], "--jobs: must be a positive integer"),
    (["--timeout", "0"], "--timeout: must be a positive, finite number of seconds"),
    (["--device", "gpu"], "--device: must be a torch device"),
    (["--backend", "torch,fla"], "are reported apart from lrnnspec's own (torch); run them separately"),
    (["--backend", "nope"], "--backend: unknown backend 'nope'; known: torch, triton, fla"),
])
def test_conformance_rejects_bad_arguments(tmp_path, capsys, argv, message):
    assert main(["conformance", "--family", "retention", "--out", str(tmp_path)] + argv) == 2
    assert message in capsys.readouterr().err


def test_conformance_on_cuda_without_a_gpu_says_so(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert main(["conformance", "--device", "cuda", "--out", str(tmp_path)]) == 3     # could not run here
    assert "--device: no CUDA device is available" in capsys.readouterr().err


def test_gpu_reports_have_their_own_names():
    from lrnnspec.commands.conformance import report_names

    assert report_names("cpu") == ("conformance.md", "certificates")
    assert report_names("cuda:1") == ("conformance-gpu.md", "certificates-gpu")


def test_certify_rejects_a_non_positive_timeout(capsys):
    assert main(["certify", "lrnnspec.impls.retention:chunk_retention", "--family", "retention",
                 "--timeout", "0"]) == 2
    assert "--timeout: must be a positive, finite number of seconds" in capsys.readouterr().err


def test_fla_peer_kernels_are_listed_only_when_asked():
    from lrnnspec.impls.registry import DEFAULT_BACKENDS, implementations

    pytest.importorskip("fla")
    peers = implementations(backends=("fla",))
    assert {"gated_delta_rule", "gla", "simple_gla", "kda"} <= {p.family for p in peers}
    assert {p.form for p in peers} == {"recurrent", "chunk"}
    assert all(p.backend == "fla" and p.target.startswith("fla.ops.") for p in peers)
    # on this CPU: Triton's interpreter with the first-config shim, fp32 only; on a GPU, tf32 matmuls
    assert all(p.env.get("TRITON_INTERPRET") == "1" and p.budget["dtypes"] == ("fp32",) for p in peers)
    assert all(p.contracts == {"fp32": "tf32"} and not p.env for p in implementations(backends=("fla",), device="cuda"))
    assert [p.form for p in implementations("gla", backends=("fla",))] == ["recurrent", "chunk"]
    assert "fla" not in DEFAULT_BACKENDS
