"""HF transformers' pure-PyTorch chunk fallbacks (what a user of Qwen3-Next, OLMo-hybrid or Kimi-Linear runs
on a CPU) called on the spec's inputs — time-first [B, T, heads, ·], spec names — with chunk size :data:`CHUNK`.

Both functions take (query, key, value, g, beta, chunk_size, initial_state, output_final_state,
use_qk_l2norm_in_kernel) and compute, per value head, the spec's recurrence with scale K^-1/2 (applied
to q inside; the spec's default scale is the same), in float32 whatever the inputs' dtype. The adapter
passes ``use_qk_l2norm_in_kernel=False``: the spec's keys are already unit-norm and its queries are not
normalized, so HF must not normalize them either. Grouped value heads (HV > H, value head h reads key head
h // (HV / H)): Qwen3-Next's function repeats q and k to the value heads itself (``repeat_interleave``, as
the spec does); Kimi-Linear's takes one head count for all inputs, so the adapter repeats q and k for it the
same way.

The public names are decorated (``use_kernel_func_from_hub_with_fallback``): with fla-core installed they
dispatch to its Triton kernels on GPU devices, and on CPU tensors to the torch function — the code timed
here. :meth:`HFReference.load` imports that public name (transformers is imported only then, with the
working directory last on the import path: this repository's ``kernels/`` folder must not shadow the
``kernels`` package transformers imports). :meth:`HFReference.from_source` compiles the same function from
transformers' source file without importing transformers (seconds cheaper; the unit tests use it).
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import importlib.util
import os
import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

CHUNK = 64


@contextlib.contextmanager
def _working_directory_last():
    """``sys.path`` with the working directory ('' or its path) moved to the end, for the block."""
    saved, cwd = list(sys.path), os.getcwd()
    here = [p for p in sys.path if p in ("", ".") or os.path.abspath(p) == cwd]
    sys.path[:] = [p for p in sys.path if p not in here] + here
    try:
        yield
    finally:
        sys.path[:] = saved


def source_file(module: str) -> Path:
    """The ``.py`` file of ``module`` (dotted, in an installed package), found without importing it or
    its package (``find_spec`` on the top-level name only)."""
    top, *rest = module.split(".")
    with _working_directory_last():
        spec = importlib.util.find_spec(top)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"{top} is not installed")
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*rest).with_suffix(".py")
    if not path.is_file():
        raise ImportError(f"{module}: no source file {path}")
    return path


def _function_defs(module: str) -> dict[str, ast.FunctionDef]:
    tree = ast.parse(source_file(module).read_text())
    return {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}


def function_source_dump(module: str, function: str) -> str:
    """``function``'s code in ``module``'s source as an AST dump (no decorators, no docstring): two copies
    with equal dumps compute the same thing."""
    fn = _function_defs(module)[function]
    body = fn.body[1:] if fn.body and isinstance(fn.body[0], ast.Expr) and isinstance(
        getattr(fn.body[0], "value", None), ast.Constant) else fn.body
    return ast.dump(ast.FunctionDef(fn.name, fn.args, body, [], fn.returns, fn.type_comment), annotate_fields=False)


# module-level names the fallbacks read besides their own module's helper functions
def _globals():
    import torch
    import torch.nn.functional as F  # noqa: N812

    return {"torch": torch, "F": F, "nn": torch.nn, "is_torchdynamo_exporting": lambda: False,
            "__name__": "lrnnspec.peers.hf.source"}


@dataclass(frozen=True)
class HFReference:
    """One HF torch fallback: ``module:function``; ``grouped_values``: it takes fewer key heads than
    value heads (H < HV) and repeats q, k itself; ``copies``: other modules holding the same function
    (the same code, checked by :meth:`copies_identical`), not timed separately."""

    module: str
    function: str
    grouped_values: bool
    copies: tuple[str, ...] = field(default=())

    @property
    def target(self) -> str:
        return f"{self.module}:{self.function}"

    def load(self):
        """The public function, imported (what users call)."""
        return _load(self.module, self.function)

    def from_source(self):
        """The same function compiled from transformers' source file, undecorated (the decorator's CPU
        path calls exactly this), without importing transformers: the function's own definition and the
        module-level functions it calls (``l2norm``), with torch, ``F`` and ``is_torchdynamo_exporting``
        (False: not exporting) as globals."""
        return _from_source(self.module, self.function)

    def copies_identical(self) -> dict[str, bool]:
        """For each of :attr:`copies`: is its function the same code as ours (AST, ignoring decorators
        and docstrings)? Reads source files only."""
        ours = function_source_dump(self.module, self.function)
        return {m: function_source_dump(m, self.function) == ours for m in self.copies}

    def __call__(self, x, fn=None):
        """Call the fallback (``fn``, default :meth:`load`) on spec inputs ``x`` (q, k [B,T,H,K];
        v [B,T,HV,V]; g [B,T,HV] or [B,T,HV,K]; beta [B,T,HV]); returns (o [B,T,HV,V], None)."""
        fn = self.load() if fn is None else fn
        q, k = x["q"], x["k"]
        group = x["v"].shape[2] // k.shape[2]
        if group > 1 and not self.grouped_values:
            q, k = q.repeat_interleave(group, dim=2), k.repeat_interleave(group, dim=2)
        return fn(q, k, x["v"], x["g"], x["beta"], chunk_size=CHUNK, use_qk_l2norm_in_kernel=False)


@cache
def _load(module: str, function: str):
    with _working_directory_last():
        return getattr(importlib.import_module(module), function)


@cache
def _from_source(module: str, function: str):
    defs = _function_defs(module)
    namespace = _globals()
    wanted, todo = {}, [function]
    while todo:                                   # the function and the module functions it calls
        name = todo.pop()
        if name in wanted:
            continue
        node = defs[name]
        node.decorator_list = []
        wanted[name] = node
        todo += [n.id for n in ast.walk(node) if isinstance(n, ast.Name) and n.id in defs and n.id not in namespace]
    code = compile(ast.Module(body=list(wanted.values()), type_ignores=[]), str(source_file(module)), "exec")
    exec(code, namespace)  # noqa: S102 - transformers' own source, as importing it would run it
    return namespace[function]


# family → its HF torch fallback
CHUNK_REFERENCES = {
    "gated_delta_rule": HFReference("transformers.models.qwen3_next.modeling_qwen3_next",
                                    "torch_chunk_gated_delta_rule", grouped_values=True,
                                    copies=("transformers.models.olmo_hybrid.modeling_olmo_hybrid",)),
    "kda": HFReference("transformers.models.kimi_linear.modeling_kimi_linear", "chunk_kimi_delta_attention",
                       grouped_values=False),
}
