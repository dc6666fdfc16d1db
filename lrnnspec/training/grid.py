"""The declared grid behind ``lrnnspec report trained``, its records and the cache that reuses them.

A *run* is one (task, model, eigenvalue range, n_h, layers, seed) training run
(:func:`lrnnspec.training.loop.train`); it yields one *record* per test length::

    {task, model, eigenvalues, n_h, layers, seed, train_len, test_len, accuracy, scaled_accuracy,
     steps, seconds, [sequence_accuracy], key, code}

``seconds`` is the whole run's wall time (training and evaluation). ``key`` identifies the
resolved configuration, ``code`` the training code (a hash of the syntax trees of
:mod:`~lrnnspec.training.tasks`, :mod:`~lrnnspec.training.models` and :mod:`~lrnnspec.training.loop`
without docstrings and comments — editing prose does not invalidate results, editing code does).
A cached run is reused iff a record with the same ``key`` and ``code`` exists.

The grid (:data:`GRID`) is fixed in advance and the same for every seed: never tuned to a seed.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import json
from dataclasses import asdict, dataclass
from typing import Callable, Iterable

from lrnnspec.spec.errors import DomainError

from . import loop, models, tasks
from .loop import TrainConfig, TrainResult, train

SEEDS = (0, 1, 2)


@dataclass(frozen=True)
class Arm:
    """One line of the grid: a configuration trained with every seed in :data:`SEEDS`."""

    task: str
    model: str
    eigenvalues: str
    n_h: int = 1
    layers: int | None = None
    steps: int | None = None

    def configs(self, seeds: Iterable[int] = SEEDS) -> list[TrainConfig]:
        return [TrainConfig(self.task, self.model, self.eigenvalues, n_h=self.n_h, layers=self.layers, seed=s,
                            steps=self.steps).resolved() for s in seeds]


def _both(task, model, **kw) -> list[Arm]:
    return [Arm(task, model, "0,1", **kw), Arm(task, model, "-1,1", **kw)]


GRID: tuple[Arm, ...] = (
    *_both("parity", "deltanet"),
    *_both("parity", "mamba"),
    *_both("S3", "deltaproduct", n_h=1),
    *_both("S3", "deltaproduct", n_h=2),
    *_both("modarith", "deltanet"),
)


def code_hash() -> str:
    """sha256 (16 hex digits) of the training code's syntax trees, docstrings removed."""
    h = hashlib.sha256()
    for module in (tasks, models, loop):
        tree = ast.parse(inspect.getsource(module))
        for node in ast.walk(tree):
            body = getattr(node, "body", None)
            if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                    and isinstance(getattr(body[0], "value", None), ast.Constant) and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
        h.update(ast.dump(tree).encode())
    return h.hexdigest()[:16]


def config_key(cfg: TrainConfig) -> str:
    return hashlib.sha256(json.dumps(asdict(cfg), sort_keys=True).encode()).hexdigest()[:16]


def records_of(result: TrainResult, code: str | None = None) -> list[dict]:
    """The records of one run (one per test length)."""
    cfg = TrainConfig(**result.config)
    base = {k: result.config[k] for k in ("task", "model", "eigenvalues", "n_h", "layers", "seed", "train_len", "steps")}
    out = []
    for ev in result.evaluations:
        rec = {**base, **{k: ev[k] for k in ("test_len", "accuracy", "scaled_accuracy")},
               "seconds": round(result.seconds, 1)}
        if "sequence_accuracy" in ev:
            rec["sequence_accuracy"] = ev["sequence_accuracy"]
        rec.update(key=config_key(cfg), code=code or code_hash(), parameters=result.parameters,
                   batch=cfg.batch, d_model=cfg.d_model, lr=cfg.lr, final_loss=round(result.losses[-1], 5))
        out.append(rec)
    return out


def run_grid(cached: list[dict], arms: Iterable[Arm] = GRID, seeds: Iterable[int] = SEEDS,
             on_run: Callable[[TrainConfig, bool], None] | None = None,
             progress: Callable[[int, int, float], None] | None = None,
             save: Callable[[list[dict]], None] | None = None) -> list[dict]:
    """Records of every run of ``arms`` × ``seeds``: from ``cached`` where key and code match, else
    trained now (``on_run(cfg, reused)`` before each, ``save(records)`` after each trained run, so an
    interrupted grid keeps what it finished). Records of runs not in the grid are dropped."""
    seeds = tuple(seeds)
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
        raise DomainError("seeds", f"must be a non-empty list of integers ≥ 0, got {seeds!r}")
    code = code_hash()
    by_key: dict[str, list[dict]] = {}
    for rec in cached:
        if rec.get("code") == code:
            by_key.setdefault(rec["key"], []).append(rec)
    out: list[dict] = []
    done: set[str] = set()
    for arm in arms:
        for cfg in arm.configs(seeds):
            key = config_key(cfg)
            done.add(key)
            reused = key in by_key
            if on_run is not None:
                on_run(cfg, reused)
            if reused:
                out.extend(by_key[key])
                continue
            out.extend(records_of(train(cfg, progress), code))
            if save is not None:  # keep the cached runs not visited yet
                save(out + [r for k, recs in by_key.items() if k not in done for r in recs])
    return out
