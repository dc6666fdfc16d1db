"""One training run: AdamW on freshly generated batches, then accuracy at several test lengths.

``train(cfg)`` is deterministic given ``cfg`` (``torch.manual_seed(cfg.seed)`` for the weights, a
NumPy generator seeded with ``cfg.seed`` for the training batches, one seeded per test length for
the test sets) when run on one thread — the CLI and the grid call ``torch.set_num_threads(1)``.

Protocol (the papers' at CPU scale, research/theorems.md §2.9 / §3.3): AdamW (β = (0.9, 0.95),
weight decay 0.1), linear warm-up over the first 10 % of the steps then cosine decay to 1 % of the
learning rate, gradient clipping at 1.0, cross-entropy on the scored positions only (``targets``: the label
only, or every prefix — parity's default here, see reports/trained.md). Training lengths are
uniform in [min_len, train_len] (word problems: exactly train_len, targets at every position). Evaluation: ``eval_size`` fresh sequences of *exactly* each test length; ``accuracy`` is
the accuracy of the last prediction (the label; for word problems the full prefix product);
word problems also report ``sequence_accuracy`` (every prefix correct, Merrill et al. / Siems et
al.'s metric).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from lrnnspec.spec.errors import DomainError

from .models import LRNNStack, ModelConfig
from .tasks import IGNORE, batch, get_task, scaled_accuracy

# per-task defaults: the papers' lengths and depths scaled to a 2-core CPU (see reports/trained.md)
TASK_DEFAULTS = {
    "parity": dict(layers=1, train_len=40, min_len=3, steps=800, lr=3e-3, short_conv=False, targets="prefix"),
    "modarith": dict(layers=2, train_len=16, min_len=4, steps=1000, lr=3e-3, short_conv=True, targets="last"),
    "S3": dict(layers=1, train_len=32, min_len=None, steps=1500, lr=3e-3, short_conv=False, targets="prefix"),
    "S4": dict(layers=1, train_len=32, min_len=None, steps=1000, lr=3e-3, short_conv=False, targets="prefix"),
    "A5": dict(layers=1, train_len=32, min_len=None, steps=1000, lr=3e-3, short_conv=False, targets="prefix"),
    "S5": dict(layers=1, train_len=32, min_len=None, steps=1000, lr=3e-3, short_conv=False, targets="prefix"),
}


@dataclass(frozen=True)
class TrainConfig:
    task: str
    model: str
    eigenvalues: str
    n_h: int = 1
    layers: int | None = None
    seed: int = 0
    steps: int | None = None
    train_len: int | None = None
    test_len: int | None = None
    min_len: int | None = None
    batch: int = 64
    lr: float | None = None
    d_model: int = 64
    heads: int = 2
    eval_size: int = 512
    weight_decay: float = 0.1
    targets: str | None = None      # "last" or "prefix" (see tasks.batch); default: the task's
    short_conv: bool | None = None

    def resolved(self) -> "TrainConfig":
        """Fill the task defaults and validate every field (raises a SpecError naming it)."""
        task = get_task(self.task)
        d = TASK_DEFAULTS[self.task]
        vals = asdict(self)
        for name in ("layers", "steps", "train_len", "lr", "short_conv", "targets"):
            if vals[name] is None:
                vals[name] = d[name]
        if vals["test_len"] is None:
            vals["test_len"] = 4 * vals["train_len"]
        if vals["min_len"] is None:
            vals["min_len"] = d["min_len"] if d["min_len"] is not None else vals["train_len"]
        for name in ("seed",):
            if isinstance(vals[name], bool) or not isinstance(vals[name], int) or vals[name] < 0:
                raise DomainError(name, f"must be an integer ≥ 0, got {vals[name]!r}")
        for name in ("steps", "batch", "eval_size"):
            if isinstance(vals[name], bool) or not isinstance(vals[name], int) or vals[name] < 1:
                raise DomainError(name, f"must be a positive integer, got {vals[name]!r}")
        if not isinstance(vals["lr"], (int, float)) or not 0 < vals["lr"] < 1:
            raise DomainError("lr", f"must be a number in (0, 1), got {vals['lr']!r}")
        task.check_length("train_len", vals["train_len"])
        task.check_length("test_len", vals["test_len"])
        task.check_length("min_len", vals["min_len"])
        if vals["min_len"] > vals["train_len"]:
            raise DomainError("min_len", f"must be ≤ train_len = {vals['train_len']}, got {vals['min_len']}")
        if vals["test_len"] < vals["train_len"]:
            raise DomainError("test_len", f"must be ≥ train_len = {vals['train_len']}, got {vals['test_len']}")
        if task.every_step and vals["targets"] != "prefix":
            raise DomainError("targets", f"word problem {self.task!r} scores every prefix product: use 'prefix'")
        cfg = TrainConfig(**vals)
        cfg.model_config()  # validates model, eigenvalues, n_h, layers, d_model, heads
        return cfg

    def model_config(self) -> ModelConfig:
        task = get_task(self.task)
        return ModelConfig(self.model, self.eigenvalues, task.vocab, task.classes, self.layers, self.d_model,
                           self.heads, self.n_h, bool(self.short_conv))

    def test_lengths(self) -> list[int]:
        """train_len, its doublings below test_len, and test_len (even for modarith)."""
        out, L = [self.train_len], 2 * self.train_len
        while L < self.test_len:
            out.append(L)
            L *= 2
        return out + ([self.test_len] if self.test_len != self.train_len else [])


@dataclass
class TrainResult:
    config: dict
    losses: list[float]                          # mean training loss per tenth of the run
    evaluations: list[dict] = field(default_factory=list)  # one per test length
    seconds: float = 0.0
    parameters: int = 0


def _lr_factor(step: int, steps: int) -> float:
    warm = max(1, steps // 10)
    if step < warm:
        return (step + 1) / warm
    return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, steps - warm)))


@torch.no_grad()
def evaluate(model: LRNNStack, cfg: TrainConfig, length: int, chunk: int = 128) -> dict:
    """Accuracy of the last prediction on ``cfg.eval_size`` sequences of exactly ``length`` tokens."""
    task = get_task(cfg.task)
    rng = np.random.default_rng([cfg.seed, 1, length])
    x, y = batch(task, rng, cfg.eval_size, length, length, cfg.targets)
    right_last, right_all = 0, 0
    model.eval()
    for s in range(0, len(x), chunk):
        xb, yb = torch.from_numpy(x[s:s + chunk]), torch.from_numpy(y[s:s + chunk])
        pred = model(xb).argmax(-1)
        right_last += int((pred[:, -1] == yb[:, -1]).sum())
        scored = yb != IGNORE
        right_all += int(((pred == yb) | ~scored).all(dim=1).sum())
    model.train()
    acc = right_last / len(x)
    out = {"test_len": length, "accuracy": acc, "scaled_accuracy": scaled_accuracy(acc, task.chance)}
    if cfg.targets == "prefix":
        out["sequence_accuracy"] = right_all / len(x)
    return out


def train(cfg: TrainConfig, progress: Callable[[int, int, float], None] | None = None) -> TrainResult:
    """Train one model; ``progress(step, steps, loss)`` is called after every step."""
    cfg = cfg.resolved()
    task = get_task(cfg.task)
    start = time.perf_counter()
    torch.manual_seed(cfg.seed)
    model = LRNNStack(cfg.model_config())
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.95), weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _lr_factor(s, cfg.steps))
    rng = np.random.default_rng(cfg.seed)
    losses, window = [], []
    for step in range(cfg.steps):
        x, y = batch(task, rng, cfg.batch, cfg.min_len, cfg.train_len, cfg.targets)
        logits = model(torch.from_numpy(x))
        loss = F.cross_entropy(logits.reshape(-1, task.classes), torch.from_numpy(y).reshape(-1), ignore_index=IGNORE)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        window.append(float(loss.detach()))
        if len(window) * 10 >= cfg.steps or step == cfg.steps - 1:
            losses.append(sum(window) / len(window))
            window = []
        if progress is not None:
            progress(step + 1, cfg.steps, window[-1] if window else losses[-1])
    evaluations = [evaluate(model, cfg, L) for L in cfg.test_lengths()]
    return TrainResult(asdict(cfg), losses, evaluations, time.perf_counter() - start,
                       sum(p.numel() for p in model.parameters()))
