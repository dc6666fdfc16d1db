"""``evaluate``: the public entry point that runs any family on any engine."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .engines import Engine, Evaluation, get_engine
from .family import Family, get_family
from .prepare import prepare


def evaluate(family: "str | Family", inputs: Mapping[str, Any], *, engine: "str | Engine" = "fp64",
             initial_state=None, cu_seqlens=None, prec: int | None = None, **options) -> Evaluation:
    """Evaluate ``family`` on ``inputs`` with FLA's conventions.

    * ``inputs``: name → array (NumPy, ml_dtypes, torch or nested lists), time-first
      ([B,T,H,K] for q/k, [B,T,HV,V] for v); see ``lrnnspec spec list`` or ``family.inputs``.
    * ``engine``: ``"fp64"`` (default), ``"exact"`` (mpmath; ``"exact:arb"`` for python-flint
      balls; ``prec`` bits, default 128), ``"emulate:<contract>"`` (e.g. ``"emulate:bf16"``).
    * ``initial_state``: [N,...] per component (array, or dict/tuple for multi-part states);
      zeros when omitted. ``N`` = B, or the number of sequences with ``cu_seqlens``.
    * ``cu_seqlens``: int64 [N+1] offsets of packed sequences (B = 1, ends at T, empty allowed).
    * ``**options``: family options (``scale`` — default K^-1/2 —, ``eigenvalue_range``, ...).
    * DAG families (``plstm``): pass ``graph=`` (a :class:`~lrnnspec.spec.graph.Graph`) among the
      options; routed to :func:`lrnnspec.spec.dag.evaluate_dag`.

    Returns an :class:`Evaluation` with ``output`` (read after each update), ``final_state`` and,
    for the exact engine, ``output_bound`` / ``final_state_bound`` (absolute error bounds).
    """
    fam = family if isinstance(family, Family) else get_family(family)
    if fam.kind == "dag":  # DAG families (plstm) take a graph instead of a time axis
        from .dag import evaluate_dag
        from .errors import SpecError

        for name, value in (("initial_state", initial_state), ("cu_seqlens", cu_seqlens)):
            if value is not None:
                raise SpecError(name, f"family {fam.name!r} runs on a DAG (states on edges, no time axis); "
                                      f"it takes no {name}")
        return evaluate_dag(fam, inputs, engine=engine, prec=prec, **options)
    eng = get_engine(engine, prec=prec)
    prep = prepare(family, inputs, initial_state=initial_state, cu_seqlens=cu_seqlens, options=options)
    return eng.evaluate(prep)
