"""lrnnspec.spec — exact reference semantics for linear RNNs and linear attention.

One definition per family (:mod:`lrnnspec.spec.families`), three engines
(:mod:`lrnnspec.spec.engines`): ``exact`` (arbitrary precision with an error bound), ``fp64``
(vectorized NumPy) and ``emulate:<contract>`` (bit-exact finite-precision evaluation).
"""

from .api import evaluate
from .contract import PrecisionContract
from .dag import evaluate_dag, random_dag_inputs
from .engines import EmulateEngine, Evaluation, ExactEngine, Fp64Engine, get_engine
from .errors import (
    DomainError, EngineError, NonFiniteError, OptionError, ShapeError, SpecError, UnknownFamilyError, VarlenError,
)
from .family import Family, all_families, get_family
from .formats import FORMATS, Format, get_format
from .graph import Graph, GraphError, chain, grid
from .sampling import random_inputs
from .timeaxis import slice_time

__all__ = [
    "evaluate", "random_inputs", "slice_time", "get_family", "all_families", "Family", "get_engine", "Evaluation",
    "Fp64Engine", "EmulateEngine", "ExactEngine", "PrecisionContract", "Format", "FORMATS", "get_format",
    "SpecError", "ShapeError", "DomainError", "NonFiniteError", "VarlenError", "OptionError", "EngineError",
    "UnknownFamilyError", "evaluate_dag", "random_dag_inputs", "Graph", "GraphError", "chain", "grid",
]
