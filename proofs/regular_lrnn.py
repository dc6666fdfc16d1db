"""Compilation of a holonomy cascade into a stack of DeltaProduct / Gated DeltaProduct layers.

Grazzi et al. 2025, Thm 4 (App. C.4–C.5); Siems et al. 2025 (Gated DeltaProduct, Thm 2 [S]).
Each layer is one ``lrnnspec.spec`` ``delta_product`` evaluation; each *head* of a layer is one
permutation–reset automaton of w states whose state lives in R^{w} (K = the layer's widest head,
V = 1, S a K×1 matrix): one-hot e_state (``delay="registers"``), or the "memory" vector below
(``delay="memory"``). Per token, a head's micro-steps (k, β, v) realise its letter:

* permutation π — cycle (a₁→a₂→…→a_r) as the swaps (a_{r−1} a_r), …, (a₁ a₂) applied in that
  order; swap (i j) = I − 2kkᵀ with the unit key k = (e_i − e_j)/√2 and β = 2 (``keys="unit"``), or
  the same matrix written I − 1·kkᵀ with k = e_i − e_j, β = 1 (``keys="dyadic"``: every input in
  {0, ±1}, so every operation of the recurrence is exact in fp64/fp32/bf16; this needs the spec's
  ``require_unit_keys=False`` since ‖k‖ = √2, but the matrix is the same generalized Householder
  matrix, G(k/√2, 2)); v = 0, so the write term vanishes;
* reset to c (``delay="registers"``) — ungated ("DeltaProduct[−1,1], β ∈ {0,1,2}"): w micro-steps
  k = e_j, β = 1, v = [j = c]: each sets coordinate j to v_j (I − e_j e_jᵀ projects it out, β k vᵀ
  writes it), so A = ∏_j (I − e_j e_jᵀ) = 0 and B = e_c; gated ("Gated DeltaProduct"): log-gate
  g = −10⁴ (the spec rejects g = −∞ as non-finite; e^{−10⁴} underflows to exactly 0 in fp64,
  fp32, bf16 and fp16; in exact arithmetic it is 1.1·10⁻⁴³⁴³) then one micro-step k = e_c, β = 1,
  v = 1; with ``delay="memory"`` resets halve instead of zeroing (below);
* identity — no micro-step; unused micro-steps are padding: k = e_0, β = 0, v = 0 (exactly I).

A token's transition is thus e^{g}·G_{n_h}⋯G_1 with every G_j = I − β_j k_j k_jᵀ, β_j ∈ {0,½,1,2},
‖k_j‖ = 1: a product of generalized Householder matrices with eigenvalues in [−1,1] and norm ≤ 1.

Reading order [ours]. The cascade of :mod:`regular_cascade` is in the classical form: component
ℓ reads the *previous* coordinates of the components above it. An LRNN stack reads the *current*
outputs of the layers below (o_t is read after the update). Feeding the current coordinates is
wrong in general (``delay="none"``, kept as a negative control: it fails on Σ*aΣ). Two fixes:

* ``delay="memory"``: a reset does not forget the previous coordinate but halves it —
  reset to c is A = diag(½, …, ½, 0 at c, ½, …), B = e_c (ungated: w micro-steps k = e_j with
  β = ½, v = 0 for j ≠ c and β = 1, v = 1 for j = c; gated: log-gate g = log ½ — e^g = ½ exactly
  in fp64, fp32 and bf16 — then one micro-step k = e_c, β = 1, v = 1). Every coordinate is then 0
  or 2^{−r} (r = resets since it was set, all distinct), the current one is 1 and the one before
  the last reset ½. The decoder of a head reads (current, previous): current = argmax; previous =
  current after the identity, π⁻¹(current) after a permutation π, after a reset the coordinate at
  ½ if there is one, else current (a reset to the same value). Which action ran is a function of
  the layer's input letter, which the decoder also reads (dec(H_t, x_t), Grazzi eq. 1). Layers:
  one per cascade level, nothing else. For an aperiodic DFA (no permutations) every β ∈ {0, ½, 1}:
  all transitions have eigenvalues in [0, 1].
* ``delay="registers"`` (default; the main variant of :func:`regular.prove_regular`, whose
  one-hot states merge well in the exhaustive check): one-hot states with zeroing resets (A = 0, B = e_c; gated: g = −10⁴);
  a parity clock (a Z₂ head, one swap per token) and, per level read below, two reset-only
  registers per component: the one of parity p_t = t mod 2 is reset to the current coordinate,
  the other keeps the coordinate of t − 1. Layers: clock, level 1, registers 1, …, level h.

* ``delay="fading"`` (DeltaNet, n_h = 1; reset-only — i.e. aperiodic — cascades only): a head's
  state is a *row*, S ∈ R^{1×w} (K = 1, the key is the scalar 1, V = w), and a reset to c is the
  single factor I − ¾·kkᵀ with the write ¾·kvᵀ, v = e_c: S ← ¼·S + ¾·e_c. Every row is then a
  probability vector whose current coordinate carries ≥ ¾ and whose previous row is
  4·S − 3·e_c (after a reset; unchanged after the identity, β = 0). The decoder reads current =
  argmax S and, after a reset, previous = argmax(4·S − 3·e_c); both maxima are ≥ ¾ against ≤ ¼.
  One layer per cascade level, one Householder factor per token, β ∈ {0, ¾}: eigenvalues in
  [0, 1] — DeltaNet [0, 1]. (The key layout cannot do this with one factor: halving every
  coordinate but one is a rank-(w − 1) change of I.)

Layer i's input letter is (letter, decoded heads of layers < i) — a finite alphabet. The margin
of a head's state is its distance to the ideal pattern (one-hot; or, for memory heads, current 1,
marker ½, all others ≤ ¼), and must stay < ⅛ (memory) / < ½ (one-hot) for the decoding to be
unambiguous. The DFA state is the cascade decoding of the level heads' current coordinates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from .regular_cascade import Action, Cascade, IDENTITY

RESET_LOG_GATE = -1.0e4  # e^g underflows to 0 in fp64 (< −745.2), fp32/bf16 (< −103.3), fp16 (< −17.4)
HALF_LOG_GATE = math.log(0.5)  # e^g = 0.5 exactly in fp64, and after rounding g to fp32 / bf16
DELAYS = ("memory", "registers", "fading", "none")
FADING_BETA = 0.75  # S ← ¼ S + ¾ e_c: exact in every format (dyadic)
INV_SQRT2 = 1.0 / math.sqrt(2.0)
KEYS = ("unit", "dyadic")


@dataclass(frozen=True)
class Head:
    kind: str  # "clock" | "component" | "register"
    width: int
    component: int | None = None
    parity: int | None = None

    def label(self) -> str:
        if self.kind == "clock":
            return "clock"
        if self.kind == "component":
            return f"c{self.component}"
        return f"r{self.component}.{self.parity}"


@dataclass
class Layer:
    index: int
    kind: str  # "clock" | "level" | "registers"
    level: int | None
    heads: list[Head]
    n_h: int = 1
    layout: str = "keys"  # "keys": a head's state is a column S ∈ R^{K×1}; "values": a row S ∈ R^{1×V}
    # per head: action → id, and the micro-steps of each action (list of (k, beta, v) float tuples)
    action_ids: list[dict] = field(default_factory=list)
    actions: list[list[Action]] = field(default_factory=list)

    @property
    def width(self) -> int:
        return max(h.width for h in self.heads)

    @property
    def K(self) -> int:
        return 1 if self.layout == "values" else self.width

    @property
    def V(self) -> int:
        return self.width if self.layout == "values" else 1

    @property
    def H(self) -> int:
        return len(self.heads)


@dataclass
class CompiledLRNN:
    cascade: Cascade
    layers: list[Layer]
    gated: bool
    keys: str
    # level → indices of its heads inside its level layer / its register layer
    level_layer: dict[int, int]
    register_layer: dict[int, int]
    clock_layer: int | None
    delay: str = "registers"

    @property
    def variant(self) -> str:
        if self.delay == "fading":
            return "DeltaNet[0,1] (n_h = 1), β∈{0,¾}, values layout, fading delay"
        betas = "{0,½,1,2}" if self.delay == "memory" else "{0,1,2}"
        name = "Gated DeltaProduct" if self.gated else f"DeltaProduct[-1,1], β∈{betas}"
        return f"{name}, {self.keys} keys, {self.delay} delay"

    def memory_head(self, head: Head) -> bool:
        return self.delay == "memory" and head.kind == "component"

    @property
    def margin(self) -> float:
        """Deviation from the ideal state pattern below which decoding is unambiguous."""
        return 0.125 if self.delay in ("memory", "fading") else 0.5

    @property
    def householders_per_token(self) -> list[int]:
        return [layer.n_h for layer in self.layers]

    @property
    def widths(self) -> list[int]:
        return [layer.width for layer in self.layers]

    def spec_options(self) -> dict:
        return {"require_unit_keys": self.keys == "unit", "scale": 1.0}

    def summary(self) -> dict:
        return {"variant": self.variant, "layers": len(self.layers),
                "heads": [layer.H for layer in self.layers], "widths": self.widths,
                "householders_per_token": self.householders_per_token,
                "total_householders_per_token": int(sum(self.householders_per_token)),
                "cascade_components": len(self.cascade.components), "cascade_levels": self.cascade.levels,
                "layer_kinds": [layer.kind for layer in self.layers]}

    # --- micro-steps ---------------------------------------------------------------------------
    def microsteps(self, head: Head, act: Action) -> tuple[list[tuple[tuple, float, float]], bool]:
        """(list of (key as a tuple of (index, coefficient) pairs, β, v), gate-reset?) for an action."""
        if act[0] == "id":
            return [], False
        if self.delay == "fading":  # one factor on the scalar key; v = e_c is set by parameters()
            if act[0] != "reset":
                raise ValueError(f"delay: 'fading' compiles reset-only (aperiodic) cascades; head "
                                 f"{head.label()} has the action {act}")
            return [(((0, 1.0),), FADING_BETA, 1.0)], False
        if act[0] == "perm":
            steps = []
            for i, j in swaps(act[1]):
                if self.keys == "unit":
                    steps.append((((i, INV_SQRT2), (j, -INV_SQRT2)), 2.0, 0.0))
                else:
                    steps.append((((i, 1.0), (j, -1.0)), 1.0, 0.0))
            return steps, False
        c = act[1]
        if self.gated:
            return [(((c, 1.0),), 1.0, 1.0)], True
        if self.memory_head(head):  # halve every coordinate, overwrite c with 1
            return [(((j, 1.0),), 1.0 if j == c else 0.5, float(j == c)) for j in range(head.width)], False
        return [(((j, 1.0),), 1.0, float(j == c)) for j in range(head.width)], False

    def gate_value(self, head: Head) -> float:
        """The log-gate of a gated reset of ``head``."""
        return HALF_LOG_GATE if self.memory_head(head) else RESET_LOG_GATE

    def action_id(self, layer: Layer, h: int, act: Action) -> int:
        ids = layer.action_ids[h]
        if act not in ids:
            steps, _ = self.microsteps(layer.heads[h], act)
            if len(steps) > layer.n_h:
                raise RuntimeError(f"layer {layer.index} head {layer.heads[h].label()}: action {act} needs "
                                   f"{len(steps)} micro-steps > n_h = {layer.n_h} (an unreachable letter)")
            ids[act] = len(layer.actions[h])
            layer.actions[h].append(act)
        return ids[act]

    def parameters(self, layer: Layer, act_ids: np.ndarray) -> dict[str, np.ndarray]:
        """delta_product inputs (T = 1) for rows whose head actions are ``act_ids`` [N, H]."""
        N, H, K, V, n_h = act_ids.shape[0], layer.H, layer.K, layer.V, layer.n_h
        k = np.zeros((N, n_h, H, K))
        k[..., 0] = 1.0  # padding key e_0 (β = 0)
        v = np.zeros((N, n_h, H, V))
        beta = np.zeros((N, n_h, H))
        g = np.zeros((N, 1, H))
        for h in range(H):
            table_k = np.zeros((len(layer.actions[h]), n_h, K))
            table_k[..., 0] = 1.0
            table_v = np.zeros((len(layer.actions[h]), n_h, V))
            table_b = np.zeros((len(layer.actions[h]), n_h))
            table_g = np.zeros(len(layer.actions[h]))
            for a, act in enumerate(layer.actions[h]):
                steps, gate_reset = self.microsteps(layer.heads[h], act)
                for j, (key, b, val) in enumerate(steps):
                    table_k[a, j] = 0.0
                    for idx, coef in key:
                        table_k[a, j, idx] = coef
                    table_b[a, j] = b
                    if layer.layout == "values":
                        table_v[a, j, act[1]] = val  # the row e_c
                    else:
                        table_v[a, j, 0] = val
                table_g[a] = self.gate_value(layer.heads[h]) if gate_reset else 0.0
            ids = act_ids[:, h]
            k[:, :, h, :] = table_k[ids]
            v[:, :, h, :] = table_v[ids]
            beta[:, :, h] = table_b[ids]
            g[:, 0, h] = table_g[ids]
        out = {"q": np.zeros((N, 1, H, K)), "k": k, "v": v, "beta": beta}
        if self.gated:
            out["g"] = g
        return out

    def initial_state(self, N: int) -> list[np.ndarray]:
        """One-hot initial states [N, H, K, V] per layer: clock 0, components and registers at the
        cascade encoding of the start state (a column, or a row in the values layout)."""
        x0 = self.cascade.encode(self.cascade.dfa.start)
        out = []
        for layer in self.layers:
            S = np.zeros((N, layer.H, layer.K, layer.V))
            for h, head in enumerate(layer.heads):
                c = 0 if head.kind == "clock" else x0[head.component]
                if layer.layout == "values":
                    S[:, h, 0, c] = 1.0
                else:
                    S[:, h, c, 0] = 1.0
            out.append(S)
        return out

    # --- what each head does, from the decoded outputs of the layers below --------------------
    def head_actions(self, layer: Layer, letters: np.ndarray, decoded: list[np.ndarray],
                     previous: list[np.ndarray] | None = None) -> np.ndarray:
        """Action ids [N, H] of ``layer`` for rows with letters [N] and the decoded head values
        [N, H_j] of every layer j below it (``decoded``: current; ``previous``: the previous
        coordinates read by memory heads' decoders)."""
        N = letters.shape[0]
        ids = np.zeros((N, layer.H), dtype=np.int64)
        if layer.kind == "clock":
            ids[:] = self.action_id(layer, 0, ("perm", (1, 0)))
            return ids
        parity = decoded[self.clock_layer][:, 0] if self.clock_layer is not None else None
        if layer.kind == "registers":
            src = decoded[self.level_layer[layer.level]]
            src_heads = {head.component: h for h, head in enumerate(self.layers[self.level_layer[layer.level]].heads)}
            for h, head in enumerate(layer.heads):
                value = src[:, src_heads[head.component]]
                keys = np.stack([parity == head.parity, value], axis=1).astype(np.int64)
                uniq, _, inv = unique_rows(keys)
                table = np.array([self.action_id(layer, h, ("reset", int(val)) if on else IDENTITY)
                                  for on, val in uniq])
                ids[:, h] = table[inv.reshape(-1)]
            return ids
        # a level layer: previous coordinates of the levels above, from the registers
        casc = self.cascade
        upper = np.full((N, len(casc.components)), -1, dtype=np.int64)
        if self.delay in ("none", "memory", "fading"):  # none: the *updated* coordinates (negative control)
            src = decoded if self.delay == "none" else previous
            for lvl, li in self.level_layer.items():
                if lvl < layer.level:
                    for h, head in enumerate(self.layers[li].heads):
                        upper[:, head.component] = src[li][:, h]
        for lvl, li in self.register_layer.items():
            if lvl >= layer.level:
                continue
            for h, head in enumerate(self.layers[li].heads):
                sel = parity != head.parity  # the register not written at this step
                upper[sel, head.component] = decoded[li][sel, h]
        cols = [c.index for c in casc.components if c.level < layer.level]
        keys = np.concatenate([letters[:, None], upper[:, cols]], axis=1).astype(np.int64)
        uniq, _, inv = unique_rows(keys)
        for h, head in enumerate(layer.heads):
            table = np.empty(len(uniq), dtype=np.int64)
            for u, row in enumerate(uniq):
                x = [None] * len(casc.components)
                for c, val in zip(cols, row[1:]):
                    x[c] = int(val)
                table[u] = self.action_id(layer, h, casc.action(head.component, int(row[0]), tuple(x)))
            ids[:, h] = table[inv]
        return ids

    def decode(self, layer: Layer, S: np.ndarray, act_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The decoder of ``layer``: from its states S [N, H, K, 1] (after the update) and the action
        ids [N, H] of this step (a function of the layer's input letter), the current head values
        [N, H], the previous head values [N, H] (memory heads; else equal to the current ones) and
        each row's deviation from the ideal pattern [N] (see the module docstring)."""
        S = np.asarray(S, dtype=np.float64)
        S = S[..., 0, :] if layer.layout == "values" else S[..., 0]  # [N, H, width]
        N = S.shape[0]
        cur = np.zeros((N, layer.H), dtype=np.int64)
        prev = np.zeros((N, layer.H), dtype=np.int64)
        dev = np.zeros(N)
        rows = np.arange(N)
        for h, head in enumerate(layer.heads):
            x = S[:, h, :]
            w = head.width
            c = np.argmax(x[:, :w], axis=1)
            cur[:, h] = c
            if layer.layout == "values":
                p, dev = self._decode_fading(layer, h, x[:, :w], c, act_ids[:, h], dev)
                prev[:, h] = p
                continue
            ideal = np.zeros_like(x)
            ideal[rows, c] = 1.0
            if not self.memory_head(head):
                prev[:, h] = c
                dev = np.maximum(dev, np.abs(x - ideal).max(axis=1))
                continue
            rest = x.copy()
            rest[rows, c] = -np.inf
            m = np.argmax(rest[:, :w], axis=1)
            marker = x[rows, m] >= 0.375
            ideal[rows[marker], m[marker]] = 0.5
            # others must be ≤ ¼: deviation max(0, x − ¼) off the pattern, |x − ideal| on it
            off = np.ones_like(x, dtype=bool)
            off[rows, c] = False
            off[rows[marker], m[marker]] = False
            d = np.where(off, np.maximum(x - 0.25, 0.0) + np.maximum(-x, 0.0), np.abs(x - ideal))
            dev = np.maximum(dev, d.max(axis=1))
            # previous coordinate from the action that ran
            kinds = np.array([{"id": 0, "perm": 1, "reset": 2}[a[0]] for a in layer.actions[h]])
            inv = np.tile(np.arange(w), (len(layer.actions[h]), 1))
            for i, a in enumerate(layer.actions[h]):
                if a[0] == "perm":
                    inv[i, list(a[1])] = np.arange(w)
            kind = kinds[act_ids[:, h]]
            p = c.copy()
            sel = kind == 1
            p[sel] = inv[act_ids[sel, h], c[sel]]
            sel = (kind == 2) & marker
            p[sel] = m[sel]
            prev[:, h] = p
        return cur, prev, dev

    def _decode_fading(self, layer: Layer, h: int, x: np.ndarray, c: np.ndarray, act_ids: np.ndarray,
                       dev: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Previous coordinate and deviation of a fading head's rows x [N, w] with current c [N]:
        every row should be ≥ 0, sum to 1 and carry ≥ ¾ at c; after a reset, 4x − 3e_c (the row
        before it) carries ≥ ¾ at the previous coordinate."""
        rows = np.arange(x.shape[0])
        reset = np.array([a[0] == "reset" for a in layer.actions[h]])[act_ids]
        before = np.where(reset[:, None], x / (1.0 - FADING_BETA) - np.eye(x.shape[1])[c] * (
            FADING_BETA / (1.0 - FADING_BETA)), x)
        p = np.where(reset, np.argmax(before, axis=1), c)
        d = np.maximum.reduce([np.maximum(FADING_BETA - x[rows, c], 0.0),
                               np.maximum(FADING_BETA - before[rows, p], 0.0),
                               np.maximum(-x.min(axis=1), 0.0), np.abs(x.sum(axis=1) - 1.0)])
        return p, np.maximum(dev, d)

    def dfa_state(self, decoded: list[np.ndarray]) -> np.ndarray:
        """The DFA state of each row: the cascade decoding of the level heads' coordinates."""
        casc = self.cascade
        if not casc.components:
            return None
        N = decoded[0].shape[0]
        x = np.zeros((N, len(casc.components)), dtype=np.int64)
        for lvl, li in self.level_layer.items():
            for h, head in enumerate(self.layers[li].heads):
                x[:, head.component] = decoded[li][:, h]
        uniq, _, inv = unique_rows(x)
        table = np.array([casc.decode(tuple(int(v) for v in row)) for row in uniq])
        return table[inv]


def unique_rows(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """np.unique(a, axis=0, return_index=True, return_inverse=True) for a 2-D int64/float64 array,
    comparing rows bit for bit (via a 1-D byte-string view, much faster than axis=0)."""
    a = np.ascontiguousarray(a)
    if a.shape[0] == 0:
        return a, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    v = a.view(np.dtype((np.void, a.dtype.itemsize * a.shape[1]))).reshape(-1)
    _, first, inv = np.unique(v, return_index=True, return_inverse=True)
    return a[first], first, inv.reshape(-1)


def swaps(perm: tuple[int, ...]) -> list[tuple[int, int]]:
    """Transpositions (i, j), applied in order, whose product maps e_t to e_{perm[t]}."""
    out, seen = [], set()
    for start in range(len(perm)):
        if start in seen or perm[start] == start:
            continue
        cyc = [start]
        while perm[cyc[-1]] != start:
            cyc.append(perm[cyc[-1]])
        seen.update(cyc)
        out.extend((cyc[i], cyc[i + 1]) for i in range(len(cyc) - 2, -1, -1))
    return out


def compile_cascade(casc: Cascade, *, gated: bool = False, keys: str = "unit", delay: str = "registers",
                    reachable_actions: dict[int, set] | None = None) -> CompiledLRNN:
    """The layer stack for ``casc``. ``reachable_actions`` (component → actions, e.g. from
    :func:`cascade_actions`) fixes each layer's n_h; by default it is computed.

    ``delay="none"`` builds the naive stack — one layer per level, each reading the *updated*
    coordinates of the levels above, no clock and no registers. It is wrong in general (it is
    kept as a negative control: the verification must catch it, e.g. on Σ*aΣ)."""
    if keys not in KEYS:
        raise ValueError(f"keys: must be one of {KEYS}, got {keys!r}")
    if delay not in DELAYS:
        raise ValueError(f"delay: must be one of {DELAYS}, got {delay!r}")
    if delay == "fading" and gated:
        raise ValueError("gated: the 'fading' delay is the ungated DeltaNet construction; pass gated=False")
    if reachable_actions is None:
        reachable_actions = cascade_actions(casc)
    h = casc.levels
    layers: list[Layer] = []
    level_layer, register_layer, clock_layer = {}, {}, None

    layout = "values" if delay == "fading" else "keys"

    def add(kind, level, heads):
        layers.append(Layer(len(layers), kind, level, heads, layout=layout, action_ids=[{} for _ in heads],
                            actions=[[] for _ in heads]))
        return len(layers) - 1

    if h >= 2 and delay == "registers":
        clock_layer = add("clock", None, [Head("clock", 2)])
    for lvl in range(1, h + 1):
        comps = casc.at_level(lvl)
        level_layer[lvl] = add("level", lvl, [Head("component", c.width, c.index) for c in comps])
        if lvl < h and delay == "registers":
            register_layer[lvl] = add("registers", lvl, [Head("register", c.width, c.index, p)
                                                         for c in comps for p in (0, 1)])
    net = CompiledLRNN(casc, layers, gated, keys, level_layer, register_layer, clock_layer, delay)
    for layer in layers:
        need = 1
        acts_of = []
        for head in layer.heads:
            if head.kind == "clock":
                acts = [("perm", (1, 0))]
            elif head.kind == "register":
                acts = [IDENTITY] + [("reset", c) for c in range(head.width)]
            else:
                acts = sorted(reachable_actions.get(head.component, set()))
            acts_of.append(acts)
            need = max([need, *(len(net.microsteps(head, a)[0]) for a in acts)])
        layer.n_h = need
        for h, acts in enumerate(acts_of):  # register the reachable actions (certified up front)
            for a in acts:
                net.action_id(layer, h, a)
    return net


def cascade_actions(casc: Cascade) -> dict[int, set]:
    """component → the actions it performs on the cascade states reachable from the start."""
    start = casc.encode(casc.dfa.start)
    seen, todo = {start}, [start]
    acts: dict[int, set] = {c.index: set() for c in casc.components}
    while todo:
        x = todo.pop()
        for a in range(casc.dfa.letters):
            for i in range(len(casc.components)):
                acts[i].add(casc.action(i, a, x))
            y = casc.step(x, a)
            if y not in seen:
                seen.add(y)
                todo.append(y)
    return acts


# --- certificates: every token transition is a product of generalized Householder matrices ---
@dataclass
class TransitionCertificate:
    layer: int
    head: str
    action: str
    factors: int
    betas: list[float]
    gate: float
    exact_matrix_ok: bool  # the rational product equals the intended permutation / 0 / identity
    exact_affine_ok: bool  # and the write term equals e_c for a reset, 0 otherwise
    float_norm: float  # ‖e^g ∏ (I − β k kᵀ)‖₂ from the float parameters given to the spec
    key_norm_error: float  # max |‖k‖ − 1| over the float keys (unit keys only; dyadic: ‖k/√2‖)

    @property
    def ok(self) -> bool:
        return (self.exact_matrix_ok and self.exact_affine_ok and all(0.0 <= b <= 2.0 for b in self.betas)
                and 0.0 <= self.gate <= 1.0 and self.float_norm <= 1.0 + 1e-12 and self.key_norm_error <= 1e-12)


def certify_transitions(net: CompiledLRNN) -> list[TransitionCertificate]:
    """For every action registered in the layers (call after running, or on the reachable set):
    the token transition rebuilt (a) exactly, from the ideal keys — β k kᵀ is rational for the
    keys used (e_j, and (e_i − e_j)/√2 whose kkᵀ has entries ±1/2) — and compared with the intended
    one-hot map, and (b) in float64 from the parameters the spec receives: β ∈ [0,2], unit keys,
    gate ∈ [0,1] and spectral norm ≤ 1."""
    out = []
    for layer in net.layers:
        for h, head in enumerate(layer.heads):
            for act in layer.actions[h]:
                out.append(_certificate(net, layer, h, head, act))
    return out


def _certificate(net: CompiledLRNN, layer: Layer, h: int, head: Head, act: Action) -> TransitionCertificate:
    K = layer.K
    steps, gate_reset = net.microsteps(head, act)
    if layer.layout == "values":
        return _row_certificate(layer, head, act, steps)
    one, zero = Fraction(1), Fraction(0)
    A = [[one if i == j else zero for j in range(K)] for i in range(K)]
    b = [zero] * K
    Af = np.eye(K)
    key_err = 0.0
    betas = []
    memory = net.memory_head(head)
    # the ideal gate: ½ (memory) or 0 (zeroing; the spec gets e^{−10⁴}, 0 after underflow)
    ideal_gate = (Fraction(1, 2) if memory else zero) if gate_reset else one
    gate = float(ideal_gate)
    if gate_reset:
        A = [[ideal_gate if i == j else zero for j in range(K)] for i in range(K)]
        Af = gate * np.eye(K)
    for key, beta, val in steps:
        betas.append(beta)
        kf = np.zeros(K)
        for idx, coef in key:
            kf[idx] = coef
        if net.keys == "dyadic":  # the same matrix as G(k/√2, 2β)
            key_err = max(key_err, abs(np.linalg.norm(kf) / math.sqrt(2) - 1.0) if len(key) == 2 else
                          abs(np.linalg.norm(kf) - 1.0))
        else:
            key_err = max(key_err, abs(np.linalg.norm(kf) - 1.0))
        # ideal β k kᵀ and β k v, rational: swap keys are (e_i − e_j)/√2 with β = 2 (unit), or
        # e_i − e_j with β = 1 (dyadic) — both give (e_i − e_j)(e_i − e_j)ᵀ
        sign = {idx: (1 if coef > 0 else -1) for idx, coef in key}
        if len(key) == 2:
            bkk = {(i, j): Fraction(sign[i] * sign[j]) for i in sign for j in sign}
            bkv = {i: zero for i in sign}
        else:
            (i,) = sign
            bkk = {(i, i): Fraction(beta).limit_denominator()}
            bkv = {i: Fraction(beta).limit_denominator() * Fraction(val).limit_denominator()}
        G = [[(one if r == c else zero) - bkk.get((r, c), zero) for c in range(K)] for r in range(K)]
        A = [[sum(G[r][t] * A[t][c] for t in range(K)) for c in range(K)] for r in range(K)]
        b = [sum(G[r][t] * b[t] for t in range(K)) + bkv.get(r, zero) for r in range(K)]
        Af = (np.eye(K) - beta * np.outer(kf, kf)) @ Af
    w = head.width
    if act[0] == "id":
        want_A = [[one if (i == j) else zero for j in range(K)] for i in range(K)]
        want_b = [zero] * K
    elif act[0] == "perm":
        want_A = [[one if (i == j and i >= w) else zero for j in range(K)] for i in range(K)]
        for t, pt in enumerate(act[1]):
            want_A[pt][t] = one
        want_b = [zero] * K
    elif memory:
        # halving reset: ½ on every coordinate but c (0); unused coordinates (≥ w, always 0) are
        # left alone by the ungated form and halved by the gate
        half = Fraction(1, 2)
        want_A = [[(zero if i == act[1] else (one if i >= w and not gate_reset else half)) if i == j else zero
                   for j in range(K)] for i in range(K)]
        want_b = [one if i == act[1] else zero for i in range(K)]
    else:
        # zeroing reset: every used coordinate is overwritten; unused coordinates (≥ w) stay as they
        # are (they are always 0) — for the gated form the gate clears them too
        want_A = [[one if (i == j and i >= w and not gate_reset) else zero for j in range(K)] for i in range(K)]
        want_b = [one if i == act[1] else zero for i in range(K)]
    return TransitionCertificate(layer.index, head.label(), _fmt(act), len(steps), betas, gate,
                                 A == want_A, b == want_b, float(np.linalg.norm(Af, 2)) if K else 0.0,
                                 key_err)


def _row_certificate(layer: Layer, head: Head, act: Action, steps) -> TransitionCertificate:
    """Values layout (K = 1, key = 1): the row map S ← a·S + bᵀ, each factor a ← (1 − β)a,
    b ← (1 − β)b + β·e_c; intended: the identity (1, 0) or the fading reset to c (¼, ¾·e_c)."""
    a, b = Fraction(1), [Fraction(0)] * layer.V
    for _key, beta, val in steps:
        fb = Fraction(beta).limit_denominator()
        a = (1 - fb) * a
        b = [(1 - fb) * x + (fb * Fraction(val).limit_denominator() if i == act[1] else 0) for i, x in enumerate(b)]
    if act[0] == "id":
        want_a, want_b = Fraction(1), [Fraction(0)] * layer.V
    else:
        fb = Fraction(FADING_BETA)
        want_a, want_b = 1 - fb, [fb if i == act[1] else Fraction(0) for i in range(layer.V)]
    return TransitionCertificate(layer.index, head.label(), _fmt(act), len(steps), [s[1] for s in steps], 1.0,
                                 a == want_a, b == want_b, abs(float(a)), 0.0)


def _fmt(act: Action) -> str:
    if act[0] == "id":
        return "identity"
    if act[0] == "perm":
        return "perm " + "".join(map(str, act[1]))
    return f"reset {act[1]}"
