"""Hypothesis strategies — public API, reusable in your own tests.

* :func:`cases` / :class:`Case` — inputs of sequence families (:mod:`.sequence`);
* :func:`dag_cases` / :class:`DagCase` — inputs on graphs for DAG families (:mod:`.dag`);
* :func:`dfas` — random DFAs, the input of ``lrnnspec prove regular`` (:mod:`.dfa`).
"""

from .dag import DagCase, dag_case_from_json, dag_cases
from .dfa import dfas
from .sequence import (BETA_REGIMES, GATE_REGIMES, KEY_REGIMES, REAL_REGIMES, STATE_REGIMES, Case, case_from_json,
                       cases, chunk_boundaries, lengths, long_lengths, regime_choices, segments)

__all__ = ["Case", "case_from_json", "cases", "chunk_boundaries", "lengths", "long_lengths", "segments", "regime_choices", "DagCase", "dag_cases",
           "dag_case_from_json", "dfas", "REAL_REGIMES", "GATE_REGIMES", "BETA_REGIMES", "KEY_REGIMES",
           "STATE_REGIMES"]
