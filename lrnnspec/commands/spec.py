"""``lrnnspec spec list`` and ``lrnnspec spec eval``: the reference semantics from the shell."""

from __future__ import annotations

import time

import numpy as np


def _spec_list(args) -> int:
    from lrnnspec.spec import all_families

    for fam in all_families():
        print(f"{fam.name}")
        print(f"    {fam.recurrence}")
        print(f"    eigenvalues: {fam.eigenvalues}")
        domains = fam.domains()
        for inp in fam.inputs:
            opt = " (optional)" if inp.optional else ""
            print(f"    {inp.name:<10} [{','.join(inp.dims)}]  {domains[inp.name]}{opt}")
        if fam.options:
            print("    options: " + ", ".join(f"{o.name}={o.default!r}" for o in fam.options))
    return 0


def _summary(name: str, a: np.ndarray) -> str:
    if a.size == 0:
        return f"{name}: shape {tuple(a.shape)} (empty)"
    return (f"{name}: shape {tuple(a.shape)}  max|·| {np.max(np.abs(a)):.6g}  mean {np.mean(a):+.6g}  "
            f"first {np.array2string(a.reshape(-1)[:4], precision=6)}")


def _parse_graph(text: str | None, T: int | None):
    """``chain:N`` or ``grid:HxW[:direction]`` (default: a chain of length --T, or 16)."""
    from lrnnspec.spec import SpecError, chain, grid

    if not text:
        return chain(T or 16)
    kind, _, rest = text.partition(":")
    try:
        if kind == "chain":
            return chain(int(rest))
        if kind == "grid":
            size, _, direction = rest.partition(":")
            h, w = (int(s) for s in size.split("x"))
            return grid(h, w, direction or "right_down")
    except ValueError:
        pass
    raise SpecError("graph", f"expected chain:N or grid:HxW[:direction], got {text!r}")


def _spec_eval_dag(args) -> int:
    from lrnnspec.spec import evaluate_dag, random_dag_inputs

    graph = _parse_graph(args.graph, args.T)
    sizes = {k: v for k, v in (("B", args.B), ("H", args.H), ("K", args.K), ("V", args.V)) if v}
    x = random_dag_inputs(args.family, graph, seed=args.seed, **sizes)
    start = time.perf_counter()
    res = evaluate_dag(args.family, x, graph=graph, engine=args.engine, prec=args.prec)
    took = time.perf_counter() - start
    print(f"family {args.family}   graph {graph.kind} {graph.layout} {graph.direction or ''}   engine {res.engine}   "
          f"seed {args.seed}   {took:.3f} s")
    print("inputs: " + ", ".join(f"{k} {tuple(np.shape(v))}" for k, v in x.items()))
    print(_summary("output", res.output))
    print(_summary("final edge states C", res.final_state))
    if res.output_bound is not None:
        print(f"error bound (absolute, every returned element, {res.precision}-bit evaluation): {res.max_bound:.3e}")
    if args.print_output:
        np.set_printoptions(precision=17, threshold=1_000_000)
        print(res.output)
    return 0


def _spec_eval(args) -> int:
    from lrnnspec.spec import evaluate, get_family, random_inputs

    if get_family(args.family).kind == "dag":
        return _spec_eval_dag(args)
    sizes = {k: v for k, v in (("B", args.B), ("T", args.T), ("H", args.H), ("K", args.K), ("V", args.V)) if v}
    x = random_inputs(args.family, seed=args.seed, initial_state=args.initial_state, **sizes)
    init = x.pop("initial_state", None)
    start = time.perf_counter()
    res = evaluate(args.family, x, engine=args.engine, initial_state=init, prec=args.prec)
    took = time.perf_counter() - start
    print(f"family {args.family}   engine {res.engine}   seed {args.seed}   {took:.3f} s")
    print("inputs: " + ", ".join(f"{k} {tuple(np.shape(v))}" for k, v in x.items()))
    print(_summary("output", res.output))
    states = res.final_state if isinstance(res.final_state, dict) else {"state": res.final_state}
    for name, s in states.items():
        print(_summary(f"final {name}", s))
    if res.output_bound is not None:
        print(f"error bound (absolute, every returned element, {res.precision}-bit evaluation): "
              f"{res.max_bound:.3e}")
        print(_summary("output bound", res.output_bound))
    if args.print_output:
        np.set_printoptions(precision=17, threshold=1_000_000)
        print(res.output)
    return 0


def register(sub) -> None:
    spec = sub.add_parser("spec", help="reference semantics: list families, evaluate one")
    spec_sub = spec.add_subparsers(dest="spec_command", required=True)
    lst = spec_sub.add_parser("list", help="every family with its recurrence and parameter domains")
    lst.set_defaults(func=_spec_list)
    ev = spec_sub.add_parser("eval", help="evaluate a family on random valid inputs")
    ev.add_argument("family")
    ev.add_argument("--engine", default="fp64", help="fp64 | exact | exact:arb | emulate:<contract> (e.g. emulate:bf16)")
    for size in ("T", "B", "H", "K", "V"):
        ev.add_argument(f"--{size}", type=int, default=None)
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--prec", type=int, default=None, help="bits for the exact engine (default 128)")
    ev.add_argument("--initial-state", action="store_true", help="draw a random initial state")
    ev.add_argument("--print-output", action="store_true", help="print every output element")
    ev.add_argument("--graph", default=None, help="DAG families (plstm): chain:N or grid:HxW[:direction]")
    ev.set_defaults(func=_spec_eval, validate=_check_sizes)


def _check_sizes(args) -> str | None:
    for size in ("T", "B", "H", "K", "V"):
        value = getattr(args, size)
        if value is not None and value < (0 if size == "T" else 1):
            return f"--{size} must be ≥ {0 if size == 'T' else 1}, got {value}"
    return None
