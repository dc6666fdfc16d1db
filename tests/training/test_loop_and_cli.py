"""The training loop learns parity with eigenvalues in [−1, 1] and not in [0, 1]; its configuration and
the ``lrnnspec train`` command reject bad arguments with one line naming the option; the grid reuses
cached runs and retrains when the training code changed; the report evaluates the targets."""

import json

import pytest
import torch

from lrnnspec.cli import main
from lrnnspec.spec.errors import SpecError
from lrnnspec.training import grid as G
from lrnnspec.training.loop import TrainConfig, train
from lrnnspec.training.report import render, targets

TINY = dict(steps=120, train_len=10, min_len=2, test_len=40, batch=32, d_model=16, heads=1, eval_size=256, lr=1e-2)


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _scaled(result, length):
    return next(e["scaled_accuracy"] for e in result.evaluations if e["test_len"] == length)


def test_deltanet_learns_parity_with_negative_eigenvalues_and_not_without():
    neg = train(TrainConfig("parity", "deltanet", "-1,1", seed=0, **TINY))
    pos = train(TrainConfig("parity", "deltanet", "0,1", seed=0, **TINY))
    # measured (seed 0): [−1,1] 1.00 at 10 and 20; [0,1] 0.05 at 10 — thresholds with margin
    assert _scaled(neg, 10) >= 0.9 and _scaled(neg, 20) >= 0.8
    assert _scaled(pos, 10) <= 0.3 and _scaled(pos, 20) <= 0.3


def test_training_is_deterministic_by_seed():
    cfg = TrainConfig("S3", "deltaproduct", "-1,1", n_h=2, steps=3, train_len=6, test_len=6, batch=8, d_model=8,
                      heads=1, eval_size=16)
    a, b = train(cfg), train(cfg)
    assert a.losses == b.losses and a.evaluations == b.evaluations


@pytest.mark.parametrize("kwargs, match", [
    (dict(model="gla", eigenvalues="-1,1"), "eigenvalues: model 'gla' computes its decay in log space"),
    (dict(model="rnn"), "model: must be one of"),
    (dict(n_h=2), "n_h: only deltaproduct"),
    (dict(train_len=40, test_len=20), "test_len: must be ≥ train_len"),
    (dict(steps=0), "steps: must be a positive integer"),
    (dict(d_model=30, heads=4), "heads: must divide d_model"),
    (dict(task="S3", targets="last"), "targets: word problem"),
])
def test_bad_configuration_is_named(kwargs, match):
    base = dict(task="parity", model="deltanet", eigenvalues="-1,1")
    with pytest.raises(SpecError, match=match):
        TrainConfig(**{**base, **kwargs}).resolved()


@pytest.mark.parametrize("argv, match", [
    (["parity", "--model", "mlstm", "--eigenvalues", "-1,1"], "--eigenvalues: model 'mlstm'"),
    (["parity", "--model", "deltanet", "--eigenvalues", "-1,1", "--train-len", "16", "--test-len", "8"],
     "--test-len: must be ≥ train_len"),
    (["modarith", "--model", "deltanet", "--eigenvalues", "0,1", "--train-len", "15"], "--train-len: must be even"),
    (["parity", "--model", "deltanet", "--eigenvalues", "-1,1", "--threads", "0"], "--threads must be ≥ 1"),
])
def test_train_cli_usage_errors_exit_2_with_one_line(argv, match, capsys):
    assert main(["train", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert match in err and "Traceback" not in err


def test_train_cli_prints_records_with_the_required_fields(capsys, tmp_path):
    out = tmp_path / "run.json"
    code = main(["train", "parity", "--model", "deltanet", "--eigenvalues", "-1,1", "--steps", "2", "--train-len",
                 "6", "--eval-size", "8", "--d-model", "8", "--heads", "1", "--quiet", "--out", str(out)])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert json.loads(out.read_text()) == data
    need = {"task", "model", "eigenvalues", "n_h", "layers", "seed", "train_len", "test_len", "accuracy",
            "scaled_accuracy", "steps", "seconds"}
    assert [r["test_len"] for r in data["records"]] == [6, 12, 24]
    assert all(need <= set(r) for r in data["records"])


def test_grid_reuses_cached_runs_and_retrains_after_a_code_change(monkeypatch):
    arm = G.Arm("parity", "deltanet", "-1,1", steps=1)
    small = dict(train_len=4, test_len=4, eval_size=4, d_model=8, heads=1, batch=4)
    monkeypatch.setattr(G.Arm, "configs", lambda self, seeds=G.SEEDS: [
        TrainConfig(self.task, self.model, self.eigenvalues, seed=s, steps=self.steps, **small).resolved()
        for s in seeds])
    seen = []
    first = G.run_grid([], [arm], (0,), on_run=lambda cfg, reused: seen.append(reused))
    again = G.run_grid(first, [arm], (0,), on_run=lambda cfg, reused: seen.append(reused))
    assert seen == [False, True] and again == first
    stale = [{**r, "code": "0" * 16} for r in first]
    G.run_grid(stale, [arm], (0,), on_run=lambda cfg, reused: seen.append(reused))
    assert seen[-1] is False


def _records(task, model, ev, values, n_h=1, length=160):
    return [{"task": task, "model": model, "eigenvalues": ev, "n_h": n_h, "layers": 1, "seed": s, "train_len": 40,
             "test_len": L, "accuracy": 0.0, "scaled_accuracy": v, "steps": 1, "seconds": 1.0, "batch": 1,
             "d_model": 8, "lr": 1e-3}
            for s, v in enumerate(values) for L in (40, length)]


def test_targets_are_evaluated_on_the_records_and_a_miss_is_reported_as_not_met():
    recs = (_records("parity", "mamba", "-1,1", [0.95, 0.2, 0.91]) + _records("parity", "mamba", "0,1", [0.0, 0.1, 0.05])
            + _records("parity", "deltanet", "-1,1", [1.0, 0.5, 0.4]) + _records("parity", "deltanet", "0,1", [0, 0, 0]))
    got = {t["target"].split(":")[0]: t["met"] for t in targets(recs)}
    assert got["parity, Mamba"] is True and got["parity, DeltaNet"] is False
    assert got["modular arithmetic, DeltaNet"] is None and got["S3, DeltaProduct"] is None
    md = render(recs, {"generated": "today", "runs": 12, "trained": 0, "code": "x", "protocol": []})
    assert "**not met**" in md and "not run" in md
