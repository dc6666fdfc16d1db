"""``lrnnspec spec list`` and ``lrnnspec spec eval``: the reference semantics from the shell.

Exit codes: 0 evaluated (or listed), 2 a usage error (an unknown family, engine or size, an option
that does not apply to the family), 3 could not run here (the sizes need more memory than this
machine has: refused up front with the estimate). Never 1. Sizes left out take the spec's defaults
(T = 16); ``--T 0`` evaluates the empty sequence.
"""

from __future__ import annotations

import argparse
import time

from lrnnspec.errors import UsageError

from . import checks

# bytes per element held while evaluating, per engine (inputs, outputs, states, the engine's own
# temporaries); the exact engine holds mpmath numbers
BYTES_PER_ELEMENT = {"fp64": 64, "emulate": 96, "exact": 2048}
MAX_PREC = 1 << 16


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


def _summary(name: str, a) -> str:
    import numpy as np

    if a.size == 0:
        return f"{name}: shape {tuple(a.shape)} (empty)"
    return (f"{name}: shape {tuple(a.shape)}  max|·| {np.max(np.abs(a)):.6g}  mean {np.mean(a):+.6g}  "
            f"first {np.array2string(a.reshape(-1)[:4], precision=6)}")


def _parse_graph(text: str | None, T: int | None):
    """``chain:N`` or ``grid:HxW[:direction]`` (default: a chain of length --T, or 16)."""
    from lrnnspec.spec import SpecError, chain, grid

    if not text:
        return chain(16 if T is None else T)
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

    if args.graph is not None and args.T is not None:
        raise UsageError("--T", "does not apply with --graph (the graph sets the length)", args.T)
    if args.initial_state:
        raise UsageError("--initial-state", f"does not apply to the DAG family {args.family}")
    if args.T == 0:
        raise UsageError("--T", f"must be ≥ 1 for the DAG family {args.family} (a chain of T nodes)", args.T)
    graph = _parse_graph(args.graph, args.T)
    sizes = {k: v for k, v in (("B", args.B), ("H", args.H), ("K", args.K), ("V", args.V)) if v is not None}
    _fits(args, sizes | {"T": graph.num_nodes})
    x = random_dag_inputs(args.family, graph, seed=args.seed, **sizes)
    start = time.perf_counter()
    res = evaluate_dag(args.family, x, graph=graph, engine=args.engine, prec=args.prec)
    took = time.perf_counter() - start
    print(f"family {args.family}   graph {graph.kind} {graph.layout} {graph.direction or ''}   engine {res.engine}   "
          f"seed {args.seed}   {took:.3f} s")
    print("inputs: " + ", ".join(f"{k} {tuple(v.shape)}" for k, v in x.items()))
    print(_summary("output", res.output))
    print(_summary("final edge states C", res.final_state))
    if res.output_bound is not None:
        print(f"error bound (absolute, every returned element, {res.precision}-bit evaluation): {res.max_bound:.3e}")
    if args.print_output:
        import numpy as np

        np.set_printoptions(precision=17, threshold=1_000_000)
        print(res.output)
    return 0


def _fits(args, sizes: dict) -> None:
    """Refuse (exit 3, with the estimate) sizes whose evaluation cannot fit in this machine's memory."""
    from lrnnspec.spec import get_family
    from lrnnspec.spec.sampling import DEFAULT_SIZES

    fam = get_family(args.family)
    dims = {**DEFAULT_SIZES, **sizes}
    dims["HV"] = dims["HV"] or dims["H"]
    dims["T*n_h"] = dims["T"] * dims["n_h"]
    dims.setdefault("N", dims["B"])
    elements = 0
    for inp in fam.inputs:
        n = 1
        for d in inp.dims:
            n *= int(dims.get(d, 1) or 1)
        elements += n
    elements += dims["B"] * dims["T"] * dims["HV"] * dims["V"] + dims["B"] * dims["HV"] * dims["K"] * dims["V"]
    engine = args.engine.split(":")[0]
    per = BYTES_PER_ELEMENT.get(engine, 64) * (1 if engine != "exact" else max(1, (args.prec or 128) // 128))
    checks.memory_fits("--T" if sizes.get("T", 0) > 1 << 16 else "sizes", elements * per,
                       f"evaluating {fam.name} with {', '.join(f'{k}={v}' for k, v in sizes.items()) or 'the defaults'} "
                       f"on the {engine} engine")


def _spec_eval(args) -> int:
    from lrnnspec.spec import get_family
    from lrnnspec.spec.errors import SpecError

    try:
        fam = get_family(checks.text_option("FAMILY", args.family))
    except SpecError as exc:
        raise UsageError("FAMILY", str(exc).split(": ", 1)[-1]) from None
    checks.text_option("--engine", args.engine)
    try:
        if fam.kind == "dag":
            return _spec_eval_dag(args)
        return _spec_eval_sequence(args)
    except SpecError as exc:
        option = {"engine": "--engine", "contract": "--engine", "prec": "--prec", "graph": "--graph"}.get(exc.argument)
        if option is None:
            raise
        raise UsageError(option, str(exc).split(": ", 1)[-1]) from None


def _spec_eval_sequence(args) -> int:
    from lrnnspec.spec import evaluate, random_inputs

    if args.graph is not None:
        raise UsageError("--graph", f"applies to DAG families (plstm); {args.family} is a sequence family", args.graph)
    sizes = {k: v for k, v in (("B", args.B), ("T", args.T), ("H", args.H), ("K", args.K), ("V", args.V))
             if v is not None}
    _fits(args, sizes)
    x = random_inputs(args.family, seed=args.seed, initial_state=args.initial_state, **sizes)
    init = x.pop("initial_state", None)
    start = time.perf_counter()
    res = evaluate(args.family, x, engine=args.engine, initial_state=init, prec=args.prec)
    took = time.perf_counter() - start
    print(f"family {args.family}   engine {res.engine}   seed {args.seed}   {took:.3f} s")
    print("inputs: " + ", ".join(f"{k} {tuple(v.shape)}" for k, v in x.items()))
    print(_summary("output", res.output))
    states = res.final_state if isinstance(res.final_state, dict) else {"state": res.final_state}
    for name, s in states.items():
        print(_summary(f"final {name}", s))
    if res.output_bound is not None:
        print(f"error bound (absolute, every returned element, {res.precision}-bit evaluation): "
              f"{res.max_bound:.3e}")
        print(_summary("output bound", res.output_bound))
    if args.print_output:
        import numpy as np

        np.set_printoptions(precision=17, threshold=1_000_000)
        print(res.output)
    return 0


def register(sub) -> None:
    spec = sub.add_parser("spec", help="reference semantics: list families, evaluate one", description=__doc__,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    spec_sub = spec.add_subparsers(dest="spec_command", required=True, metavar="SUBCOMMAND")
    lst = spec_sub.add_parser("list", help="every family with its recurrence and parameter domains")
    lst.set_defaults(func=_spec_list)
    ev = spec_sub.add_parser("eval", help="evaluate a family on random valid inputs")
    ev.add_argument("family")
    ev.add_argument("--engine", default="fp64", help="fp64 | exact | exact:arb | emulate:<contract> (e.g. emulate:bf16)")
    for size in ("T", "B", "H", "K", "V"):
        ev.add_argument(f"--{size}", type=checks.nonnegative_int if size == "T" else checks.positive_int, default=None,
                        help="sequence length (default 16; 0: the empty sequence)" if size == "T" else None)
    ev.add_argument("--seed", type=checks.seed, default=0)
    ev.add_argument("--prec", type=checks.positive_int, default=None,
                    help=f"bits for the exact engine (default 128, at most {MAX_PREC})")
    ev.add_argument("--initial-state", action="store_true", help="draw a random initial state")
    ev.add_argument("--print-output", action="store_true", help="print every output element")
    ev.add_argument("--graph", default=None, help="DAG families (plstm): chain:N or grid:HxW[:direction]")
    ev.set_defaults(func=_spec_eval, validate=_check_sizes)


def _check_sizes(args) -> str | None:
    if args.prec is not None and args.prec > MAX_PREC:
        raise UsageError("--prec", f"must be at most {MAX_PREC} bits", args.prec)
    if args.prec is not None and not args.engine.startswith("exact"):
        raise UsageError("--prec", f"applies to the exact engine, not {args.engine}", args.prec)
    return None
