"""Families declare, the harness reads: every input has a role, records are validated when built, the
registries fill themselves, and no family or input name appears in the harness, the strategies or
the benchmarks — what they know of a family they read from its record."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import lrnnspec
from lrnnspec.impls.registry import implementations
from lrnnspec.spec.family import DAG_DIMS, SEQUENCE_DIMS, Family, Input, StateComponent, all_families
from lrnnspec.spec.roles import ROLES

PACKAGE = Path(lrnnspec.__file__).parent
# generic code: the harness (conventions excepted: its tables are the peers' spellings, data by design),
# the strategies, the benchmarks
GENERIC = [p for d in ("harness", "strategies", "bench") for p in sorted((PACKAGE / d).glob("*.py"))
           if p.name != "conventions.py"]


def _names_used(path: Path) -> set[str]:
    """String constants used as names: dict keys and subscripts, compared or tested for membership,
    passed to a call; multi-character constants anywhere. Format specs are not names."""
    tree = ast.parse(path.read_text())
    specs = {id(node.format_spec) for node in ast.walk(tree) if isinstance(node, ast.FormattedValue)
             and node.format_spec is not None}
    used = set()
    for node in ast.walk(tree):
        if id(node) in specs:
            continue
        slots = []
        if isinstance(node, ast.Subscript):
            slots = [node.slice]
        elif isinstance(node, ast.Compare):
            slots = [node.left, *node.comparators]
        elif isinstance(node, ast.Dict):
            slots = [k for k in node.keys if k is not None]
        elif isinstance(node, ast.Call):
            slots = list(node.args)
        elif isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            slots = list(node.elts)
        used |= {s.value for s in slots if isinstance(s, ast.Constant) and isinstance(s.value, str)}
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and len(node.value) > 1:
            used.add(node.value)
    return used


def test_no_family_or_input_name_in_generic_code():
    dims = set(SEQUENCE_DIMS) | set(DAG_DIMS) | {"N", "n_h"}
    families = {f.name for f in all_families()}
    inputs = {i.name for f in all_families() for i in f.inputs} - dims
    found = {p.relative_to(PACKAGE).as_posix(): sorted(_names_used(p) & (families | inputs)) for p in GENERIC}
    assert GENERIC and not {p: n for p, n in found.items() if n}, found


def test_every_input_has_a_known_role_and_families_fill_the_registry():
    for fam in all_families():
        assert fam.inputs and all(i.role in ROLES for i in fam.inputs), fam.name
    names = {f.name for f in all_families()}
    assert {"gated_delta_rule", "gla", "plstm"} <= names
    assert {i.family for i in implementations(kinds=("sequence", "dag"))} == names


def _family(**changes) -> Family:
    base = dict(name="_probe", recurrence="S_t = S_{t-1}", inputs=(Input("q", ("B", "T", "H", "K"), role="query"),),
                state=(StateComponent("S", ("N", "H", "K", "V")),), output_dims=("B", "T", "H", "V"),
                step=lambda *a: None, readout=lambda *a: None)
    return Family(**(base | changes))


@pytest.mark.parametrize("changes, rule", [
    ({"inputs": (Input("q", ("B", "T", "H", "K"), role="query"),) * 2}, "declared twice"),
    ({"inputs": (Input("q", ("B", "T", "H", "W"), role="query"),)}, "unknown dimension"),
    ({"output_dims": ("B", "T", "Z")}, "output_dims has unknown dimension"),
    ({"unit_keys": ("k",)}, "not an input"),
    ({"unit_keys": ("q",)}, "must have role 'key'"),
    ({"kind": "tree"}, "kind must be one of"),
    ({"state_when": {"z": lambda o: True}}, "not a state component"),
    ({"flops": 4.0}, "flops must be callable"),
])
def test_family_records_are_validated_when_built(changes, rule):
    with pytest.raises(ValueError, match=rule):
        _family(**changes)


def test_inputs_and_states_validate_their_roles():
    with pytest.raises(ValueError, match="unknown role 'gate'"):
        Input("g", ("B", "T", "H"), role="gate")
    with pytest.raises(ValueError, match="role must be one of"):
        StateComponent("m", ("N", "H"), role="log")
    with pytest.raises(ValueError, match="must start with 'N'"):
        StateComponent("S", ("H", "K", "V"))
