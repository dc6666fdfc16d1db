"""Calling conventions as data: how a kernel is called with spec-layout inputs and read back.

The harness holds inputs in the spec's names and layouts (time-first ``[B,T,H,K]``, states
``[N,H,K,V]``; see ``lrnnspec spec list``). A :class:`Convention` says how a library spells and lays
them out — keyword per input, a transform per input / state component / output, how the initial
state is passed (one keyword, a tuple, a dict, or one keyword per component), the flag that asks
for the final state and how the state comes back — and :func:`call_sequence` applies it. Nothing
here branches on a family: where one library's API differs between families (mamba_ssm's
``selective_scan_fn`` and ``mamba_chunk_scan_combined``), the table holds one record per family.

Conventions of sequence families (:data:`CONVENTIONS`):

``fla``            flash-linear-attention: spec names as keywords, ``initial_state`` (a tuple for
                   multi-part states; linear attention's normalizer z as ``[N,1,H,K]``),
                   ``output_final_state``, returns ``(o, state)``.
``mamba_ssm``      ``selective_scan_fn`` (mamba: channel-first ``[B,D,L]``, ``return_last_state``) and
                   ``mamba_chunk_scan_combined`` (mamba2: ``initial_states`` / ``return_final_states``
                   with the state as ``[N,H,P,N]``, the transpose of the spec's).
``mlstm_kernels``  heads-first ``[B,NH,S,DH]``; ``c_initial``, ``n_initial``, ``m_initial`` (m as
                   ``[B,NH,1]``), ``return_last_states``.
``native``         the spec's own names and layouts: ``fn(**inputs, initial_state=dict | None, ...)
                   -> (o, state dict)``.

DAG families (pLSTM) have their own three (:data:`DAG_CONVENTIONS`, :func:`call_dag`): ``native``
``fn(graph, q, k, v, S, T, M, D=None, scale=None)`` on a flat node axis; ``chain`` and ``grid``,
shape-based 1-D / 2-D forms.

This module runs in the kernel's worker process (:mod:`.worker`); the harness sends the record
with each call (:meth:`Convention.to_json`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable

from lrnnspec.errors import Picklable
from lrnnspec.spec.errors import SpecError


class ResultError(Picklable, Exception):
    """The kernel returned something the convention cannot read back (not the kernel raising)."""


# name → (to the kernel's layout, back to the spec's)
TRANSFORMS: dict[str, tuple[Callable, Callable]] = {
    "swap_time_heads": (lambda t: t.transpose(1, 2), lambda t: t.transpose(1, 2)),    # [B,T,H,·] ↔ [B,H,T,·]
    "swap_last": (lambda t: t.transpose(-1, -2), lambda t: t.transpose(-1, -2)),      # [..,K,V] ↔ [..,V,K]
    "insert_axis1": (lambda t: t[:, None], lambda t: t[:, 0] if t.dim() >= 2 and t.shape[1] == 1 else t),
    "append_axis": (lambda t: t[..., None], lambda t: t.reshape(t.shape[:-1]) if t.dim() and t.shape[-1] == 1
                    else t),
}


@dataclass(frozen=True)
class Convention:
    """One library's way of calling a kernel (see the module docstring). Fields:

    ``keywords``          spec input name → the kernel's keyword (missing: the spec name);
    ``input_transforms``  spec input name → :data:`TRANSFORMS` key;
    ``output_transform``  transform of the output;
    ``initial_state``     keyword carrying the initial state (``None``: per-component keywords in
                          ``state_keywords``);
    ``state_keywords``    state component → its own keyword (mlstm_kernels' c/n/m_initial);
    ``state_packing``     ``"parts"`` (one tensor, or a tuple in declaration order), ``"dict"``;
    ``state_transforms``  state component → transform (applied going in, undone coming back);
    ``final_state``       keyword of the flag asking for the final state (``None``: no flag);
    ``always_state``      the kernel returns ``(output, state)`` — or ``(output, *parts)`` for a
                          multi-part state — on every call, unasked (``native``);
    ``dims``              keyword → a dimension symbol passed as an integer (fla's
                          ``num_householder`` = n_h), when the kernel takes that keyword;
    ``none_state``        without an initial state, pass ``None`` for its keyword(s) rather than
                          leave them out (set where the kernel names them: HF Kimi-Linear's recurrent
                          form requires ``initial_state``).

    :func:`resolve` adapts a record to a kernel's signature: the spellings other libraries use for the
    same inputs and flags (:data:`ALIASES`, :data:`FINAL_FLAGS`, :data:`INITIAL_KEYWORDS`), a
    heads-first layout, explicit renames."""

    name: str
    keywords: dict[str, str] = field(default_factory=dict)
    input_transforms: dict[str, str] = field(default_factory=dict)
    output_transform: str | None = None
    initial_state: str | None = "initial_state"
    state_keywords: dict[str, str] = field(default_factory=dict)
    state_packing: str = "parts"
    state_transforms: dict[str, str] = field(default_factory=dict)
    final_state: str | None = "output_final_state"
    always_state: bool = False
    dims: dict[str, str] = field(default_factory=dict)
    none_state: bool = False

    def __post_init__(self):
        for where, names in (("input_transforms", self.input_transforms.values()),
                             ("state_transforms", self.state_transforms.values()),
                             ("output_transform", [self.output_transform] if self.output_transform else [])):
            bad = [n for n in names if n not in TRANSFORMS]
            if bad:
                raise ValueError(f"convention {self.name!r}: {where}: unknown transform(s) {bad}; known: "
                                 f"{', '.join(TRANSFORMS)}")
        if self.state_packing not in ("parts", "dict"):
            raise ValueError(f"convention {self.name!r}: state_packing must be 'parts' or 'dict'")
        if self.initial_state is None and not self.state_keywords:
            raise ValueError(f"convention {self.name!r}: no keyword for the initial state")

    def keyword(self, name: str) -> str:
        return self.keywords.get(name, name)

    @property
    def initial_keywords(self) -> tuple[str, ...]:
        return (self.initial_state,) if self.initial_state else tuple(self.state_keywords.values())

    def to_json(self) -> dict:
        return asdict(self)


FLA = Convention("fla", state_transforms={"z": "insert_axis1"}, dims={"num_householder": "n_h"})
NATIVE = Convention("native", state_packing="dict", final_state=None, always_state=True)
MLSTM = Convention("mlstm_kernels", input_transforms=dict.fromkeys(("q", "k", "v", "i", "f"), "swap_time_heads"),
                   output_transform="swap_time_heads", initial_state=None,
                   state_keywords={"C": "c_initial", "n": "n_initial", "m": "m_initial"},
                   state_transforms={"m": "append_axis"}, final_state="return_last_states")
MAMBA_SSM = {
    "mamba": Convention("mamba_ssm", input_transforms=dict.fromkeys(("u", "delta", "z", "B", "C"), "swap_time_heads"),
                        output_transform="swap_time_heads", final_state="return_last_state"),
    "mamba2": Convention("mamba_ssm", initial_state="initial_states", state_transforms={"S": "swap_last"},
                         final_state="return_final_states"),
}
CONVENTIONS: dict[str, "Convention | dict[str, Convention]"] = {
    "fla": FLA, "mamba_ssm": MAMBA_SSM, "mlstm_kernels": MLSTM, "native": NATIVE}
DAG_CONVENTIONS = ("native", "chain", "grid")


# other spellings of the same thing, in the order they are tried when a kernel's signature lacks ours
ALIASES = {"q": ("query",), "k": ("key",), "v": ("value",), "g": ("gk",), "a": ("alpha",), "b": ("beta",)}
FINAL_FLAGS = ("output_final_state", "return_final_states", "return_final_state", "return_last_states",
               "return_last_state")
INITIAL_KEYWORDS = ("initial_state", "initial_states", "h0")
# one keyword per state component when the signature has no single initial-state keyword: ``{name}`` is the
# component's spec name (fla-core's naive_mesa_net_exact: h_kk_init, h_kv_init)
COMPONENT_KEYWORDS = ("{name}_init", "{name}_initial", "initial_{name}")
LAYOUTS = ("time-first", "heads-first")


def resolve(conv: Convention, inputs: dict[str, tuple[str, ...]], parameters: frozenset[str], *,
            layout: str | None = None, rename: dict[str, str] | None = None,
            states: tuple[str, ...] = ()) -> Convention:
    """``conv`` adapted to a kernel whose signature names ``parameters``: each spec input in
    ``inputs`` (name → dims) the signature lacks takes the first alias it has (``query`` for ``q``…),
    unless that alias is itself a spec input; the final-state flag and the initial-state keyword
    likewise — and a signature with no initial-state keyword but one per state component (``states``,
    the family's component names, spelled as :data:`COMPONENT_KEYWORDS`) takes the state that way;
    ``layout="heads-first"`` moves the head axis before time for every per-step input and the output;
    ``rename`` (spec name → the kernel's keyword; inputs, options, ``initial_state``,
    ``output_final_state``) wins over everything."""
    rename = dict(rename or {})
    keywords = dict(conv.keywords)
    for name in inputs:
        if conv.keyword(name) not in parameters:
            alias = next((a for a in ALIASES.get(name, ()) if a in parameters and a not in inputs), None)
            if alias is not None:
                keywords[name] = alias
    final, initial = conv.final_state, conv.initial_state
    if final is not None and final not in parameters:
        final = next((f for f in FINAL_FLAGS if f in parameters), None)
    state_keywords = dict(conv.state_keywords)
    if initial is not None and initial not in parameters:
        initial = next((k for k in INITIAL_KEYWORDS if k in parameters), initial)
        per_component = {c: next((f.format(name=c) for f in COMPONENT_KEYWORDS if f.format(name=c) in parameters), None)
                         for c in states}
        if initial not in parameters and states and "initial_state" not in rename and all(per_component.values()):
            initial, state_keywords = None, per_component
    final = rename.pop("output_final_state", final)
    initial = rename.pop("initial_state", initial)
    keywords.update(rename)
    transforms, output = dict(conv.input_transforms), conv.output_transform
    if layout not in (None, *LAYOUTS):
        raise SpecError("layout", f"must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if layout == "heads-first":
        transforms.update({n: "swap_time_heads" for n, dims in inputs.items() if len(dims) >= 3 and dims[1:2] in
                           (("T",), ("T*n_h",))})
        output = "swap_time_heads"
    return replace(conv, keywords=keywords, final_state=final, initial_state=initial, input_transforms=transforms,
                   output_transform=output, state_keywords=state_keywords)


def convention_for(name: str, family: str) -> Convention:
    """The record of convention ``name`` for ``family``; a SpecError names what is wrong."""
    if name not in CONVENTIONS:
        raise SpecError("convention", f"must be one of {', '.join(CONVENTIONS)}, got {name!r}")
    entry = CONVENTIONS[name]
    if isinstance(entry, dict):
        if family not in entry:
            raise SpecError("convention", f"{name} applies to families {' and '.join(entry)}, not {family!r}")
        return entry[family]
    return entry


def check_convention(name: str) -> None:
    if name not in CONVENTIONS:
        raise SpecError("convention", f"must be one of {', '.join(CONVENTIONS)}, got {name!r}")


def _to(transform: str | None, t):
    return t if transform is None else TRANSFORMS[transform][0](t)


def _back(transform: str | None, t):
    return t if transform is None else TRANSFORMS[transform][1](t)


def call_sequence(fn: Callable, *, convention: dict, inputs: dict, initial_state: dict | None, want_state: bool,
                  state_names: list[str], kwargs: dict[str, Any]):
    """Call ``fn`` under ``convention`` (a :meth:`Convention.to_json` record); returns (output in spec
    layout, state dict in spec layout or None)."""
    conv = Convention(**convention)
    kw = {conv.keyword(n): _to(conv.input_transforms.get(n), t) for n, t in inputs.items()}
    kw.update({conv.keyword(n): v for n, v in kwargs.items()})
    if initial_state is None and conv.none_state:
        kw.update(dict.fromkeys(conv.initial_keywords))
    if initial_state is not None:
        parts = {n: _to(conv.state_transforms.get(n), initial_state[n]) for n in state_names}
        if conv.initial_state is None:
            kw.update({conv.state_keywords[n]: t for n, t in parts.items()})
        elif conv.state_packing == "dict":
            kw[conv.initial_state] = parts
        else:
            values = tuple(parts.values())
            kw[conv.initial_state] = values[0] if len(values) == 1 else values
    if conv.final_state is not None:
        kw[conv.final_state] = want_state
    result = fn(**kw)
    returns_state = want_state or conv.always_state
    if not returns_state:
        output, state = (result[0] if isinstance(result, (tuple, list)) else result), None
    else:
        flat = len(state_names) > 1 and isinstance(result, (tuple, list)) and len(result) == 1 + len(state_names)
        if not flat and (not isinstance(result, (tuple, list)) or len(result) != 2):
            raise ResultError(f"asked for its final state, the kernel must return (output, state) or (output, "
                              f"{', '.join(state_names)}), got {type(result).__name__}"
                              + (f" of length {len(result)}" if isinstance(result, (tuple, list)) else ""))
        # (output, part, part, …): the parts follow the output (fla-core's naive_mesa_net_exact)
        output, state = (result[0], tuple(result[1:])) if flat else result
    output = _back(conv.output_transform, output) if hasattr(output, "dim") else output
    if not want_state:
        return output, None
    if isinstance(state, dict):
        parts = state
    else:
        values = tuple(state) if isinstance(state, (tuple, list)) else (state,)
        if len(values) != len(state_names):
            raise ResultError(f"the final state has {len(values)} part(s), the spec's {len(state_names)} "
                              f"({', '.join(state_names)})")
        parts = dict(zip(state_names, values))
    return output, {n: (_back(conv.state_transforms.get(n), s) if hasattr(s, "dim") else s)
                    for n, s in parts.items()}


def call_dag(fn: Callable, *, convention: str, graph: dict | None, inputs: dict, layout: list[int],
             heads_values: list[int], want_state: bool, states_keyword: str | None, kwargs: dict[str, Any],
             initial_state=None):
    """Call a DAG kernel: ``native`` takes the graph first and a flat node axis; ``chain`` / ``grid``
    the node axes ``layout``. Returns (output [B,P,H,V], {"edges": edge states [B,E,H,K,V]} or None); an
    output not shaped [B, *layout, H, V] (``heads_values`` = [H, V]) is a :class:`ResultError`."""
    from lrnnspec.spec.graph import Graph

    B, P = next(iter(inputs.values())).shape[:2]
    kw = {n: t.reshape(B, *layout, *t.shape[2:]) for n, t in inputs.items()}
    kw.update(kwargs)
    if want_state:
        kw[states_keyword] = True
    if convention == "native":
        g = Graph.from_edges(graph["num_nodes"], [tuple(e) for e in graph["edges"]], in_ports=graph["in_ports"],
                             out_ports=graph["out_ports"], layout=tuple(graph["layout"]), kind=graph["kind"],
                             direction=graph["direction"])
        result = fn(g, **kw)
    else:
        result = fn(**kw)
    states = None
    if want_state:
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            raise ResultError(f"asked for its edge states ({states_keyword}=True) the kernel returned "
                              f"{type(result).__name__}, not (output, states)")
        result, states = result
        if isinstance(states, dict) and len(states) == 1:     # keyed by the family's state name
            (states,) = states.values()
        states = {"edges": states}
    elif isinstance(result, (tuple, list)) and result:
        result = result[0]
    H, V = heads_values
    want = (B, *layout, H, V)
    if hasattr(result, "shape") and tuple(result.shape) != want:
        raise ResultError(f"output has shape {tuple(result.shape)}, the spec's is {want} ({convention} convention)")
    return (result.reshape(B, P, H, V) if hasattr(result, "reshape") else result), states


ADAPTERS = {"sequence": call_sequence, "dag": call_dag}


def signature_of(fn: Callable) -> list[dict] | None:
    """The parameters of ``fn`` as data (name, kind, whether it has a default); None without a
    readable signature (a builtin, a C extension)."""
    import inspect

    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return None
    return [{"name": p.name, "kind": p.kind.name, "default": p.default is not p.empty,
             "value": p.default if isinstance(p.default, (bool, int, float, str, type(None))) else repr(p.default)}
            for p in params]


def call(fn: Callable, convention: str, family: str, inputs: dict, *, state_names: list[str],
         initial_state: dict | None = None, want_state: bool = False, cu_seqlens=None, chunk_size: int | None = None,
         options: dict | None = None, dims: dict[str, int] | None = None):
    """Call ``fn`` under ``convention`` **in this process** — for trusted code (lrnnspec's own tests
    and benchmarks of its own kernels); the harness calls a kernel under test only in its worker.
    ``dims``: the case's sizes, for the keywords the convention passes as integers. Returns (output,
    state dict or None) in the spec's layout."""
    conv = convention_for(convention, family)
    params = {p["name"] for p in signature_of(fn) or []}
    kwargs = {kw: (dims or {})[d] for kw, d in conv.dims.items() if kw in params and d in (dims or {})}
    kwargs |= {k: v for k, v in (options or {}).items() if v is not None}
    if cu_seqlens is not None:
        kwargs["cu_seqlens"] = cu_seqlens
    if chunk_size is not None:
        kwargs["chunk_size"] = chunk_size
    return call_sequence(fn, convention=conv.to_json(), inputs=inputs, initial_state=initial_state,
                         want_state=want_state, state_names=state_names, kwargs=kwargs)
