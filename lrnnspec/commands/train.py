"""``lrnnspec train TASK --model M --eigenvalues {0,1|-1,1} [...]``: one training run, JSON result.

Trains a small LRNN stack (:mod:`lrnnspec.training`) on freshly generated data of TASK and prints a
JSON object: the resolved configuration, the training-loss curve, one record per test length
(``task, model, eigenvalues, n_h, layers, seed, train_len, test_len, accuracy, scaled_accuracy,
steps, seconds``; ``sequence_accuracy`` for word problems) and the time taken. A progress bar goes to
stderr (``--quiet`` turns it off). Runs on ``--threads`` CPU threads (default 1: deterministic by
seed). Exit codes: 0 done, 2 a usage error (one line naming the option and the rule), 3 could not
run here; never 1.
"""

from __future__ import annotations

import json
import re
import sys


def _train(args) -> int:
    import torch

    from lrnnspec.training.grid import records_of
    from lrnnspec.training.loop import train

    torch.set_num_threads(args.threads)
    cfg = args.config
    bar = None
    if not args.quiet:
        from tqdm import tqdm

        bar = tqdm(total=cfg.steps, desc=f"{cfg.task} {cfg.model} [{cfg.eigenvalues}]", unit="step", file=sys.stderr,
                   dynamic_ncols=True)

    def progress(step, steps, loss):
        if bar is not None:
            bar.update(1)
            if step % 10 == 0 or step == steps:
                bar.set_postfix(loss=f"{loss:.4f}")

    result = train(cfg, progress)
    if bar is not None:
        bar.close()
    out = {"config": result.config, "parameters": result.parameters, "seconds": round(result.seconds, 1),
           "losses": [round(v, 5) for v in result.losses], "records": records_of(result)}
    text = json.dumps(out, indent=1)
    if args.out:
        from lrnnspec.atomic import write_text

        write_text(args.out, text + "\n")
    print(text)
    return 0


def _out_file(path: str) -> None:
    """--out: a file whose folder exists and is writable (checked before training, not after)."""
    import os
    from pathlib import Path

    from lrnnspec.errors import UsageError

    from . import checks

    checks.text_option("--out", path)
    target = Path(path)
    try:
        if not path.strip() or target.is_dir():
            raise UsageError("--out", "must name a file (the JSON result), not a directory", path)
        folder = target.parent
        if not folder.is_dir():
            raise UsageError("--out", "must be in an existing directory", path)
        if not os.access(folder, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
            raise UsageError("--out", "must be writable", path)
        if len(target.name.encode()) > 240:
            raise UsageError("--out", "file name too long", path)
    except OSError as exc:
        raise UsageError("--out", f"cannot be written ({exc.strerror or exc})", path) from None


def _validate(args) -> str | None:
    if args.threads < 1:                  # the checks that need no torch come first (a usage error is fast)
        return f"--threads must be ≥ 1, got {args.threads}"
    if args.out is not None:
        _out_file(args.out)
    from lrnnspec.spec.errors import SpecError
    from lrnnspec.training.loop import TASK_DEFAULTS, TrainConfig

    shortest = TASK_DEFAULTS[args.task]["min_len"]  # a --train-len below the task's shortest length trains on it alone
    min_len = args.train_len if shortest is not None and args.train_len is not None and args.train_len < shortest else None
    try:
        args.config = TrainConfig(args.task, args.model, args.eigenvalues, n_h=args.n_h, layers=args.layers,
                                  min_len=min_len,
                                  seed=args.seed, steps=args.steps, train_len=args.train_len, test_len=args.test_len,
                                  batch=args.batch, lr=args.lr, d_model=args.d_model, heads=args.heads,
                                  eval_size=args.eval_size, targets=args.targets).resolved()
    except SpecError as exc:
        option = "--" + exc.argument.replace("_", "-")
        return f"{option}: {str(exc).split(': ', 1)[1]}" if exc.argument != "task" else str(exc)
    _fits(args.config)
    return None


def _fits(cfg) -> None:
    """Refuse up front (exit 3, with the estimate) a run whose model or batches cannot fit in memory:
    parameters with their gradients and AdamW moments, plus the activations of a training batch and of
    an evaluation batch (float32; ~32 values per element per layer and Householder factor)."""
    from . import checks

    width, layers, n_h = cfg.d_model, cfg.layers, max(1, cfg.n_h)
    parameters = 16 * layers * width * width * n_h
    train = cfg.batch * cfg.train_len * width * layers * n_h * 32
    evaluate = cfg.eval_size * cfg.test_len * width * layers * n_h * 8
    checks.memory_fits("--batch / --d-model / --train-len / --test-len / --eval-size",
                       4 * (4 * parameters + max(train, evaluate)),
                       f"training {cfg.model} (d_model {width}, {layers} layers, batch {cfg.batch}, lengths "
                       f"{cfg.train_len}/{cfg.test_len}, eval size {cfg.eval_size})")


# the choices, spelled here so that ``lrnnspec --help`` does not import torch (tests/cli checks they
# equal lrnnspec.training's MODELS, RANGES, TASKS and TARGETS)
MODELS = ("mamba", "gla", "mlstm", "deltanet", "gated_deltanet", "deltaproduct")
RANGES = ("0,1", "-1,1")
TASKS = ("parity", "modarith", "S3", "S4", "A5", "S5")
TARGETS = ("last", "prefix")


def register(sub) -> None:
    import argparse

    p = sub.add_parser("train", help="train a small LRNN on a state-tracking task (CPU scale), print JSON",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    # "-1,1" must be read as a value, not as an option: widen this parser's negative-number pattern
    p._negative_number_matcher = re.compile(r"^-\d+(,-?\d+)?$|^-\d*\.\d+$")
    p.add_argument("task", choices=tuple(TASKS), help="parity, modarith (mod 5, no brackets), S3, S4, A5, S5")
    p.add_argument("--model", required=True, choices=MODELS)
    p.add_argument("--eigenvalues", required=True, choices=RANGES,
                   help="transition eigenvalue range: 0,1 or -1,1 (Grazzi et al. 2025)")
    p.add_argument("--n-h", type=int, default=1, help="Householder factors per token (deltaproduct; default 1)")
    p.add_argument("--layers", type=int, default=None, help="stacked layers (default: the task's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=None, help="optimizer steps (default: the task's)")
    p.add_argument("--train-len", type=int, default=None, help="longest training sequence (default: the task's)")
    p.add_argument("--test-len", type=int, default=None,
                   help="longest test length (default 4× train length); also tested at train length and doublings")
    p.add_argument("--targets", choices=TARGETS, default=None,
                   help="parity: score the label only ('last', the papers' protocol) or every prefix ('prefix', "
                        "the default here); word problems: always 'prefix'")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=None, help="peak learning rate (default: the task's)")
    p.add_argument("--d-model", type=int, default=64)
    p.add_argument("--heads", type=int, default=2)
    p.add_argument("--eval-size", type=int, default=512, help="test sequences per test length")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--out", default=None, help="also write the JSON result to this file")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_train, validate=_validate)
