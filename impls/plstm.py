"""pLSTM in PyTorch: the node-by-node recurrence, the gating-matrix (masked linear-attention) form,
and the hierarchical / chunked forms for the 1-D chain and the 2-D grid (Pöppel et al., arXiv
2506.11997, eqs. 5–7 and §3.3). Every function is differentiable (autograd) and agrees with
:mod:`lrnnspec.spec.families.plstm` (tested in ``tests/plstm``).

Shapes follow the spec: q, k [B,P…,H,K]; v [B,P…,H,V]; S [B,P…,H,O]; T [B,P…,H,O,I]; M [B,P…,H,I];
D [B,P…,H] or None; P… = ``(n,)`` for 1-D (O = I = 1), ``(h, w)`` for 2-D (O = I = 2: port 0 the
horizontal edge, port 1 the vertical one), flat ``P`` for a general :class:`Graph`. ``scale``
defaults to K^-1/2. Outputs [B,P…,H,V].

Gating matrix (eq. 7), target-major: ``G[b, h, n, n']`` is the weight with which node n' writes to
node n (n' ≺ n), so that, with qs = scale·q,

    o_n = Σ_{n'} G[n, n'] (qs_n · k_{n'}) v_{n'} + D_n (qs_n · k_n) v_n,      O = ((Qs Kᵀ) ⊙ G) V + …

**Hierarchical construction** (log depth; §3.3 and App. C of the paper, our own formulation). A
block of side s carries four tensors: ``Tb`` — transfer from its incoming boundary edges to its
outgoing boundary edges (sum over paths of the product of the transitions of the nodes passed);
``Sb`` — from each node's sources to the outgoing boundary; ``Mb`` — from the incoming boundary to
each node's output; ``Gb`` — the block's own gating matrix. Blocks of side 2s are merged from their
children with einsum/matmul and concatenation; inputs are zero-padded to a power of two (padding
sits downstream of every real node, so it changes nothing). 1-D (block of length s, scalars)::

    Tb = Tb_b·Tb_a,  Sb = [Sb_a·Tb_b, Sb_b],  Mb = [Mb_a, Mb_b·Tb_a],  Gb = [[Gb_a, 0], [Mb_b Sb_aᵀ, Gb_b]].

2-D (right/down cover; children A B / C D; boundary vectors [left (s), top (s)] in, [right, bottom]
out): the children's incoming boundaries are linear maps Φ of the parent's incoming boundary and Ψ of
the parent's sources — Φ_A = selection, Φ_B = [right-out of A; top of B], Φ_C = [left of C;
bottom-out of A], Φ_D = [right-out of C; bottom-out of B] — and the parent's tensors are read off
(:func:`_merge_2d`). Stopping at a block size c gives the **chunked form**: per block the masked
attention with its c²×c² gating matrix, plus the boundary states passed between blocks along
anti-diagonal wavefronts (1-D: along the chunks). Other grid directions are the right/down cover of
the flipped image.

Precision: fp16 / bf16 inputs are computed in float32 (outputs rounded back to the inputs' dtype,
edge states float32), the ``mixed-fp16`` / ``mixed-bf16`` contract of every lrnnspec.impls form.
"""

from __future__ import annotations

import functools
import math

import torch

from lrnnspec.spec.graph import DIRECTIONS, Graph
from .registry import register_forms

__all__ = [
    "recurrent", "gating_matrix_dag", "masked_attention", "parallel_dag",
    "gating_matrix_1d", "parallel_1d", "chunked_1d",
    "gating_matrix_2d", "parallel_2d", "chunked_2d",
]


def _fp32_compute(fn):
    """fp16 / bf16 inputs are computed in float32 (the precision contract ``mixed-fp16`` /
    ``mixed-bf16`` of every lrnnspec.impls form): the output is rounded back to the inputs' dtype,
    edge states stay float32."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        low = next((a.dtype for a in (*args, *kwargs.values())
                    if isinstance(a, torch.Tensor) and a.dtype in (torch.float16, torch.bfloat16)), None)
        if low is None:
            return fn(*args, **kwargs)
        up = lambda a: a.float() if isinstance(a, torch.Tensor) and a.dtype == low else a  # noqa: E731
        out = fn(*map(up, args), **{n: up(a) for n, a in kwargs.items()})
        return (out[0].to(low), *out[1:]) if isinstance(out, tuple) else out.to(low)
    return wrapper


def _scale(q, scale):
    return q.shape[-1] ** -0.5 if scale is None else scale


def _direct(qs, k, v, D):
    """D_n (qs_n·k_n) v_n, [B,P…,H,V] (zero when D is None)."""
    if D is None:
        return torch.zeros_like(v)
    return (D * (qs * k).sum(-1))[..., None] * v


# --- the node-by-node recurrence (eqs. 5–6) ----------------------------------------------------------
@_fp32_compute
def recurrent(graph: Graph, q, k, v, S, T, M, D=None, scale=None, return_states: bool = False):
    """Eqs. 5–6 node by node in ``graph.order`` (flat node axis: q [B,P,H,K] ...). Returns the
    output [B,P,H,V] (and the edge states [B,E,H,K,V] with ``return_states``)."""
    qs = q * _scale(q, scale)
    direct = _direct(qs, k, v, D)
    edge = [None] * graph.num_edges
    outs = [None] * graph.num_nodes
    for n in graph.order:
        incoming = [(i, edge[e]) for i, e in enumerate(graph.in_edges[n].tolist()) if e >= 0]
        y = direct[:, n]
        for i, C in incoming:
            y = y + M[:, n, :, i, None] * torch.einsum("bhkv,bhk->bhv", C, qs[:, n])
        outs[n] = y
        ports = [(o, e) for o, e in enumerate(graph.out_edges[n].tolist()) if e >= 0]
        if ports:
            kv = k[:, n, :, :, None] * v[:, n, :, None, :]
            for o, e in ports:
                c = S[:, n, :, o, None, None] * kv
                for i, C in incoming:
                    c = c + T[:, n, :, o, i, None, None] * C
                edge[e] = c
    out = torch.stack(outs, dim=1)
    if not return_states:
        return out
    zero = q.new_zeros(q.shape[0], q.shape[2], q.shape[3], v.shape[3])
    if not edge:                                   # a graph without edges (chain(1), a 1×1 grid)
        return out, zero[:, None].narrow(1, 0, 0)
    return out, torch.stack([zero if c is None else c for c in edge], dim=1)


# --- masked linear attention with a gating matrix (eq. 7) -------------------------------------------
def masked_attention(q, k, v, G, D=None, scale=None):
    """O = ((qs kᵀ) ⊙ G) v + D (qs·k) v with flat node axes: q [B,P,H,K], G [B,H,P,P] (target, source)."""
    qs = q * _scale(q, scale)
    A = torch.einsum("bnhk,bmhk->bhnm", qs, k) * G
    return torch.einsum("bhnm,bmhv->bnhv", A, v) + _direct(qs, k, v, D)


def gating_matrix_dag(graph: Graph, S, T, M):
    """G [B,H,P,P] for any DAG (eq. 7): Σ over paths = (I − A)^{-1} with A the line graph's weighted
    adjacency (A[e, e'] = T^n[o, i] when e' enters n at port i and e leaves it at port o); edges
    sorted topologically make I − A unit lower-triangular: one triangular solve.
    S [B,P,H,O], T [B,P,H,O,I], M [B,P,H,I]. Dense in E²: for small graphs."""
    B, P, H = S.shape[:3]
    rank = {n: r for r, n in enumerate(graph.order)}
    eorder = sorted(range(graph.num_edges), key=lambda e: (rank[graph.edges[e][0]], graph.edges[e][1]))
    pos = {e: j for j, e in enumerate(eorder)}
    E = graph.num_edges
    rows, cols, nodes, po, pi = [], [], [], [], []
    for n in range(P):
        for o, e in enumerate(graph.out_edges[n].tolist()):
            for i, e_in in enumerate(graph.in_edges[n].tolist()):
                if e >= 0 and e_in >= 0:
                    rows.append(pos[e]); cols.append(pos[e_in]); nodes.append(n); po.append(o); pi.append(i)
    src = [graph.edges[e][0] for e in eorder]
    sport = [graph.edges[e][1] for e in eorder]
    dst = [graph.edges[e][2] for e in eorder]
    dport = [graph.edges[e][3] for e in eorder]
    Tp = T.permute(0, 2, 1, 3, 4)  # [B,H,P,O,I]
    A = T.new_zeros(B, H, E, E)
    if rows:
        A = A.index_put((torch.arange(B)[:, None, None], torch.arange(H)[None, :, None],
                         torch.tensor(rows)[None, None], torch.tensor(cols)[None, None]),
                        Tp[:, :, nodes, po, pi])
    eye = torch.eye(E, dtype=T.dtype, device=T.device)
    W = torch.linalg.solve_triangular(eye - A, eye.expand(B, H, E, E), upper=False)  # paths e' → e
    Smat = T.new_zeros(B, H, E, P)   # Smat[e, n'] = S^{n'}[port] when e leaves n'
    Mmat = T.new_zeros(B, H, P, E)   # Mmat[n, e] = M^n[port] when e enters n
    if E:
        ar = torch.arange(E)
        bi, hi = torch.arange(B)[:, None, None], torch.arange(H)[None, :, None]
        Smat = Smat.index_put((bi, hi, ar[None, None], torch.tensor(src)[None, None]),
                              S.permute(0, 2, 1, 3)[:, :, src, sport])
        Mmat = Mmat.index_put((bi, hi, torch.tensor(dst)[None, None], ar[None, None]),
                              M.permute(0, 2, 1, 3)[:, :, dst, dport])
    return Mmat @ W @ Smat


@_fp32_compute
def parallel_dag(graph: Graph, q, k, v, S, T, M, D=None, scale=None):
    """The gating-matrix form on any DAG (flat node axis)."""
    return masked_attention(q, k, v, gating_matrix_dag(graph, S, T, M), D, scale)


# --- 1-D: hierarchical gating matrix and chunked form -------------------------------------------------
def _levels_1d(S, T, M, levels: int):
    """Block tensors after ``levels`` merges. S, T, M [B,H,L] (L a multiple of 2^levels).
    Returns Tb [B,H,nb], Sb [B,H,nb,s], Mb [B,H,nb,s], Gb [B,H,nb,s,s] with s = 2^levels."""
    Tb, Sb, Mb = T, S[..., None], M[..., None]
    Gb = S.new_zeros(*S.shape, 1, 1)
    for _ in range(levels):
        s = Sb.shape[-1]
        Ta, Tb_ = Tb[..., 0::2], Tb[..., 1::2]
        Sa, Sb2 = Sb[..., 0::2, :], Sb[..., 1::2, :]
        Ma, Mb2 = Mb[..., 0::2, :], Mb[..., 1::2, :]
        Ga, Gb2 = Gb[..., 0::2, :, :], Gb[..., 1::2, :, :]
        cross = Mb2[..., :, None] * Sa[..., None, :]  # target in b, source in a
        top = torch.cat([Ga, Ga.new_zeros(*Ga.shape[:-1], s)], dim=-1)
        bottom = torch.cat([cross, Gb2], dim=-1)
        Gb = torch.cat([top, bottom], dim=-2)
        Sb = torch.cat([Sa * Tb_[..., None], Sb2], dim=-1)
        Mb = torch.cat([Ma, Mb2 * Ta[..., None]], dim=-1)
        Tb = Ta * Tb_
    return Tb, Sb, Mb, Gb


def _gates_1d(S, T, M, length: int):
    """[B,n,H,1…] gates → [B,H,L] zero-padded to ``length``."""
    def prep(x):
        x = x.reshape(x.shape[0], x.shape[1], x.shape[2]).transpose(1, 2)
        return torch.nn.functional.pad(x, (0, length - x.shape[-1]))
    return prep(S), prep(T), prep(M)


def gating_matrix_1d(S, T, M):
    """G [B,H,n,n] of the chain, hierarchically in ⌈log2 n⌉ merges. S, M [B,n,H,1]; T [B,n,H,1,1]."""
    n = S.shape[1]
    levels = max(0, math.ceil(math.log2(n)))
    s, t, m = _gates_1d(S, T, M, 1 << levels)
    _, _, _, G = _levels_1d(s, t, m, levels)
    return G[:, :, 0, :n, :n]


@_fp32_compute
def parallel_1d(q, k, v, S, T, M, D=None, scale=None):
    """The 1-D gating-matrix form: masked attention with :func:`gating_matrix_1d`."""
    return masked_attention(q, k, v, gating_matrix_1d(S, T, M), D, scale)


@_fp32_compute
def chunked_1d(q, k, v, S, T, M, D=None, scale=None, chunk_size: int = 16):
    """Chunkwise form: hierarchical blocks of ``chunk_size`` (a power of two) nodes, masked attention inside
    a block, the edge state between blocks carried by C ← Tb·C + Σ_w Sb_w k_w v_wᵀ."""
    if chunk_size < 1 or chunk_size & (chunk_size - 1):
        raise ValueError(f"chunk_size: must be a power of two ≥ 1, got {chunk_size}")
    B, n, H, K = q.shape
    Vd = v.shape[-1]
    L = -(-n // chunk_size) * chunk_size
    s, t, m = _gates_1d(S, T, M, L)
    Tb, Sb, Mb, Gb = _levels_1d(s, t, m, int(math.log2(chunk_size)))
    nb = L // chunk_size
    pad = lambda x: torch.nn.functional.pad(x, (0, 0, 0, 0, 0, L - n))  # noqa: E731
    qs = pad(q * _scale(q, scale)).reshape(B, nb, chunk_size, H, K).permute(0, 3, 1, 2, 4)  # [B,H,nb,c,K]
    kb = pad(k).reshape(B, nb, chunk_size, H, K).permute(0, 3, 1, 2, 4)
    vb = pad(v).reshape(B, nb, chunk_size, H, Vd).permute(0, 3, 1, 2, 4)
    intra = ((qs @ kb.transpose(-1, -2)) * Gb) @ vb                       # [B,H,nb,c,V]
    src = torch.einsum("bhjw,bhjwk,bhjwv->bhjkv", Sb, kb, vb)             # each block's writes
    C = q.new_zeros(B, H, K, Vd)
    ins = []
    for j in range(nb):
        ins.append(C)
        C = Tb[:, :, j, None, None] * C + src[:, :, j]
    Cin = torch.stack(ins, dim=2)                                          # [B,H,nb,K,V]
    inter = Mb[..., None] * torch.einsum("bhjwk,bhjkv->bhjwv", qs, Cin)
    out = (intra + inter).permute(0, 2, 3, 1, 4).reshape(B, L, H, Vd)[:, :n]
    return out + _direct(q * _scale(q, scale), k, v, D)


# --- 2-D: hierarchical gating matrix and chunked form -------------------------------------------------
def _flip(x, direction: str, axes=(1, 2)):
    """Map a grid of the given cover to the right/down cover (an involution)."""
    dims = ([axes[1]] if direction.startswith("left") else []) + ([axes[0]] if direction.endswith("up") else [])
    return torch.flip(x, dims) if dims else x


def _const(rows, cols, blocks, s, like):
    """A [rows·s, cols·s] 0/1 matrix with identity blocks at (r, c) for (r, c) in ``blocks``."""
    out = like.new_zeros(rows * s, cols * s)
    eye = torch.eye(s, dtype=like.dtype, device=like.device)
    for r, c in blocks:
        out[r * s:(r + 1) * s, c * s:(c + 1) * s] = eye
    return out


def _merge_2d(Tb, Sb, Mb, Gb, idx):
    """One level: children of side s at [..., 2i+a, 2j+b, ...] → parents of side 2s (see module doc)."""
    s = Tb.shape[-1] // 2
    n = Sb.shape[-1]

    def child(x, a, b):
        return x[:, :, a::2, b::2]
    TA, TB, TC, TD = (child(Tb, a, b) for a, b in ((0, 0), (0, 1), (1, 0), (1, 1)))
    SA, SB, SC, SD = (child(Sb, a, b) for a, b in ((0, 0), (0, 1), (1, 0), (1, 1)))
    MA, MB, MC, MD = (child(Mb, a, b) for a, b in ((0, 0), (0, 1), (1, 0), (1, 1)))
    GA, GB, GC, GD = (child(Gb, a, b) for a, b in ((0, 0), (0, 1), (1, 0), (1, 1)))
    def onto_parent_in(x):  # columns over A's in [L0, U0] → over the parent's in [L0, L1, U0, U1]
        return torch.nn.functional.pad(x.unflatten(-1, (2, s)), (0, s)).flatten(-2)
    outA = onto_parent_in(TA)
    phiB = torch.cat([outA[..., :s, :], _const(1, 4, [(0, 3)], s, Tb).expand(*outA.shape[:-2], s, 4 * s)], dim=-2)
    phiC = torch.cat([_const(1, 4, [(0, 1)], s, Tb).expand(*outA.shape[:-2], s, 4 * s), outA[..., s:, :]], dim=-2)
    outB, outC = TB @ phiB, TC @ phiC
    phiD = torch.cat([outC[..., :s, :], outB[..., s:, :]], dim=-2)
    outD = TD @ phiD
    T_new = torch.cat([outB[..., :s, :], outD[..., :s, :], outC[..., s:, :], outD[..., s:, :]], dim=-2)

    def place(x, slot):  # [.., r, n] → [.., r, 4n] with x in column block ``slot``
        return torch.nn.functional.pad(x, (slot * n, (3 - slot) * n))
    srcA = place(SA, 0)
    psiB = torch.nn.functional.pad(srcA[..., :s, :], (0, 0, 0, s))      # B's in: [A's right writes; 0]
    psiC = torch.nn.functional.pad(srcA[..., s:, :], (0, 0, s, 0))      # C's in: [0; A's bottom writes]
    srcB = TB @ psiB + place(SB, 1)
    srcC = TC @ psiC + place(SC, 2)
    psiD = torch.cat([srcC[..., :s, :], srcB[..., s:, :]], dim=-2)
    srcD = TD @ psiD + place(SD, 3)
    S_new = torch.cat([srcB[..., :s, :], srcD[..., :s, :], srcC[..., s:, :], srcD[..., s:, :]], dim=-2)
    M_new = torch.cat([onto_parent_in(MA), MB @ phiB, MC @ phiC, MD @ phiD], dim=-2)
    G_new = torch.cat([place(GA, 0), MB @ psiB + place(GB, 1), MC @ psiC + place(GC, 2),
                       MD @ psiD + place(GD, 3)], dim=-2)
    idx_new = torch.cat([child(idx, a, b) for a, b in ((0, 0), (0, 1), (1, 0), (1, 1))], dim=-1)
    return T_new, S_new, M_new, G_new, idx_new


def _levels_2d(S, T, M, levels: int):
    """S [B,Y,X,H,2], T [B,Y,X,H,2,2], M [B,Y,X,H,2] (Y, X multiples of 2^levels, right/down cover) →
    per block of side c = 2^levels: Tb [B,H,by,bx,2c,2c], Sb [..,2c,c²], Mb [..,c²,2c], Gb [..,c²,c²],
    and ``local`` [c²]: the row-major position inside the block of each block node (Morton order)."""
    Tb = T.permute(0, 3, 1, 2, 4, 5)
    Sb = S.permute(0, 3, 1, 2, 4)[..., None]
    Mb = M.permute(0, 3, 1, 2, 4)[..., None, :]
    Gb = S.new_zeros(*Sb.shape[:-2], 1, 1)
    c = 1 << levels
    idx = torch.arange(c * c).reshape(1, 1, c, c, 1)
    for _ in range(levels):
        Tb, Sb, Mb, Gb, idx = _merge_2d(Tb, Sb, Mb, Gb, idx)
    return Tb, Sb, Mb, Gb, idx.reshape(-1)


def _pad_grid(x, Y, X):
    """Zero-pad a [B,h,w,...] tensor to [B,Y,X,...] (bottom/right)."""
    pads = [0, 0] * (x.dim() - 3) + [0, X - x.shape[2], 0, Y - x.shape[1]]
    return torch.nn.functional.pad(x, pads)


def _morton_axes(levels: int) -> list[int]:
    """Axes of [B, by, y bits (high → low), bx, x bits, H, F] in the order [B, H, by, bx, y_{L−1}, x_{L−1},
    …, y_0, x_0, F]: row-major blocks, each block's nodes in the Morton order of :func:`_merge_2d`."""
    ys, xs = range(2, 2 + levels), range(3 + levels, 3 + 2 * levels)
    return [0, 3 + 2 * levels, 1, 2 + levels, *[a for pair in zip(ys, xs) for a in pair], 4 + 2 * levels]


def _to_blocks(x, c: int):
    """[B, Y, X, H, F] → [B, H, by·bx, c², F]: blocks of side c row-major, nodes in Morton order (one copy)."""
    B, Y, X, H, F = x.shape
    levels = c.bit_length() - 1
    x = x.reshape(B, Y // c, *[2] * levels, X // c, *[2] * levels, H, F).permute(_morton_axes(levels))
    return x.reshape(B, H, (Y // c) * (X // c), c * c, F)


def _from_blocks(x, by: int, bx: int):
    """Inverse of :func:`_to_blocks`: [B, H, by·bx, c², F] → [B, by·c, bx·c, H, F]."""
    B, H, _, cc, F = x.shape
    levels = (cc.bit_length() - 1) // 2
    axes = _morton_axes(levels)
    inverse = sorted(range(len(axes)), key=axes.__getitem__)
    x = x.reshape(B, H, by, bx, *[2] * (2 * levels), F).permute(inverse)
    return x.reshape(B, by << levels, bx << levels, H, F)


def gating_matrix_2d(S, T, M, direction: str = "right_down"):
    """G [B,H,P,P] (P = h·w, row-major node ids, target-major) of one directional cover, built by
    ⌈log2 max(h, w)⌉ hierarchical merges. S, M [B,h,w,H,2]; T [B,h,w,H,2,2]."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction: must be one of {DIRECTIONS}, got {direction!r}")
    B, h, w, H = S.shape[:4]
    levels = max(0, math.ceil(math.log2(max(h, w))))
    L = 1 << levels
    S, T, M = (_pad_grid(_flip(x, direction), L, L) for x in (S, T, M))
    _, _, _, G, local = _levels_2d(S, T, M, levels)
    G = G[:, :, 0, 0]                                   # [B,H,L²,L²] in Morton order
    inv = torch.empty_like(local)
    inv[local] = torch.arange(local.numel())
    ids = torch.arange(h * w).reshape(1, h, w)
    fy, fx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    sel = inv[(fy * L + fx).reshape(-1)]               # Morton position of each (flipped) grid node
    G = G[:, :, sel][:, :, :, sel]                      # flipped frame, row-major
    orig = _flip(ids, direction).reshape(-1)            # original id at each flipped position
    out = torch.empty_like(G)
    out[:, :, orig[:, None], orig[None, :]] = G
    return out


@_fp32_compute
def parallel_2d(q, k, v, S, T, M, D=None, scale=None, direction: str = "right_down"):
    """The 2-D gating-matrix form: masked attention over all h·w nodes with :func:`gating_matrix_2d`."""
    B, h, w, H, K = q.shape
    G = gating_matrix_2d(S, T, M, direction)
    flat = lambda x: x.reshape(B, h * w, *x.shape[3:])  # noqa: E731
    out = masked_attention(flat(q), flat(k), flat(v), G, None if D is None else flat(D), scale)
    return out.reshape(B, h, w, H, v.shape[-1])


@_fp32_compute
def chunked_2d(q, k, v, S, T, M, D=None, scale=None, direction: str = "right_down", chunk_size: int = 8):
    """Chunked 2-D form: hierarchical blocks of ``chunk_size``×``chunk_size`` nodes (a power of two), masked
    attention inside each block, the 2·chunk_size boundary edge states between blocks passed along
    anti-diagonal wavefronts of blocks. Blocks are stored wavefront by wavefront, so a wavefront is a
    slice and its inputs a shifted slice of the previous one's outputs (no gathers); the boundary
    writes are made per wavefront too (all blocks' at once are tens of MB of fresh, page-faulted
    memory at every call)."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction: must be one of {DIRECTIONS}, got {direction!r}")
    if chunk_size < 1 or chunk_size & (chunk_size - 1):
        raise ValueError(f"chunk_size: must be a power of two ≥ 1, got {chunk_size}")
    B, h, w, H, K = q.shape
    Vd = v.shape[-1]
    c = chunk_size
    Y, X = -(-h // c) * c, -(-w // c) * c
    by, bx = Y // c, X // c
    qs = q * _scale(q, scale)
    q_, k_, v_, S_, T_, M_ = (_pad_grid(_flip(x, direction), Y, X) for x in (qs, k, v, S, T, M))
    Tb, Sb, Mb, Gb, _ = _levels_2d(S_, T_, M_, int(math.log2(c)))
    # wavefront d = i + j holds blocks i = lo(d) … hi(d), at positions start[d] …; cells[p]: the block
    # (row-major id i·bx + j) at position p
    lo = [max(0, d - bx + 1) for d in range(by + bx)]
    hi = [min(by - 1, d) for d in range(by + bx)]
    start = [0]
    for d in range(by + bx - 1):
        start.append(start[-1] + hi[d] - lo[d] + 1)
    cells = torch.tensor([i * bx + d - i for d in range(by + bx - 1) for i in range(lo[d], hi[d] + 1)],
                         device=q.device)
    Tb, Sb, Mb, Gb = (x.flatten(2, 3).index_select(2, cells) for x in (Tb, Sb, Mb, Gb))  # [B,H,n,…], n = by·bx
    qb, kb, vb = (_to_blocks(x, c).index_select(2, cells) for x in (q_, k_, v_))   # [B,H,n,c²,F]
    out = ((qb @ kb.transpose(-1, -2)) * Gb) @ vb                         # intra-block, [B,H,n,c²,V]
    inter = []
    prev = q.new_zeros(B, H, 0, 2 * c, K, Vd)                             # outputs of wavefront d − 1
    for d in range(by + bx - 1):
        a, b = start[d], start[d + 1]
        qd, kd, vd, Sd, Md = (x[:, :, a:b] for x in (qb, kb, vb, Sb, Mb))
        # each block's writes to its boundary, src[e] = kᵀ diag(Sb[e]) v: [B,H,m,2c,K,V]
        src = (Sd[..., :, :, None] * kd[..., None, :, :]).transpose(-1, -2) @ vd[..., None, :, :]
        # zero-padded previous wavefront: block (i, j)'s left input is (i, j − 1)'s right output
        # (position i − lo(d−1) + 1), its top input (i − 1, j)'s bottom output (one before)
        pad = torch.nn.functional.pad(prev, (0, 0, 0, 0, 0, 0, 1, 1))
        first = lo[d] - (lo[d - 1] if d else 0)
        ins = torch.cat([pad[:, :, first + 1:first + 1 + b - a, :c], pad[:, :, first:first + b - a, c:]], dim=3)
        prev = (Tb[:, :, a:b] @ ins.flatten(-2)).view_as(ins) + src
        # inter-block read-out o_w += Σ_e Mb[w, e] q_w · C_e, one matmul over (e, k): [c², 2c·K] @ [2c·K, V]
        inter.append((Md[..., None] * qd[..., None, :]).flatten(-2) @ ins.flatten(3, 4))
    out = out + torch.cat(inter, dim=2)
    order = torch.empty_like(cells)
    order[cells] = torch.arange(cells.numel(), device=q.device)
    out = _from_blocks(out.index_select(2, order), by, bx)
    out = _flip(out[:, :h, :w], direction)
    return out + _direct(qs, k, v, D)


# the registry's view (lrnnspec.impls.registry): each form and the certifier convention it is called with
CONVENTIONS = {"recurrent": "native", "parallel_dag": "native", "parallel_1d": "chain", "chunked_1d": "chain",
               "parallel_2d": "grid", "chunked_2d": "grid"}
FORMS = register_forms("plstm", {"recurrent": recurrent, "parallel_dag": parallel_dag, "parallel_1d": parallel_1d, "chunked_1d": chunked_1d,
         "parallel_2d": parallel_2d, "chunked_2d": chunked_2d}, conventions=CONVENTIONS)
