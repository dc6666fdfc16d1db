"""Hypothesis mutates a real certificate — deletes a field, retypes a value, puts a number out of range,
names an unknown property, dtype or family, adds an unknown field — and ``replay`` either refuses it
(exit 2, one line naming the JSON path) or accepts it as a certificate that reads back whole.

The replay's checks run in this process up to the point where the kernel would be loaded (the file,
the schema, the semantics, rebuilding every stored case); a full replay of an accepted mutation, run as
a user runs it, is in test_contract.py."""

from __future__ import annotations

import copy
import json
import re

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from lrnnspec.errors import UsageError

from .helpers import planted_certificate

BASE = planted_certificate()


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, (*prefix, i))


PATHS = [p for p in _paths(BASE) if p]
UNKNOWN = ["telepathy", "fp33", "no_such_family", "", "x" * 500, "∂", None]
OUT_OF_RANGE = [-1, -(2 ** 63), 2 ** 64, 10 ** 30, 1.5, float("inf")]


def _text(path) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else ("." if i else "") + p for i, p in enumerate(path))


@st.composite
def mutation(draw):
    path = draw(st.sampled_from(PATHS))
    kind = draw(st.sampled_from(["delete", "retype", "range", "unknown", "extra"]))
    if kind == "delete":
        value = None
    elif kind == "retype":
        value = draw(st.sampled_from([[], {}, "text", 3, 2.5, True, None, [1, "a"], {"a": 1}]))
    elif kind == "range":
        value = draw(st.sampled_from(OUT_OF_RANGE))
    elif kind == "unknown":
        value = draw(st.sampled_from(UNKNOWN))
    else:
        value = draw(st.sampled_from([1, "x", None]))
    return path, kind, value


def _apply(data, path, kind, value):
    out = copy.deepcopy(data)
    node = out
    for key in path[:-1]:
        node = node[key]
    last = path[-1]
    if kind == "delete":
        if isinstance(node, list):
            node.pop(last)
        else:
            del node[last]
    elif kind == "extra":
        target = node[last]
        if isinstance(target, dict):
            target["unexpected_field"] = value
        else:
            node[last] = [target, value] if not isinstance(target, list) else target + [value]
    else:
        node[last] = value
    return out


def _replay_checks(path: str):
    """What replay does before loading the kernel (lrnnspec.commands.replay)."""
    from lrnnspec.commands import replay
    from lrnnspec.harness.kernel import TORCH_DTYPES
    from lrnnspec.spec import get_family
    from lrnnspec.strategies import case_from_json, dag_case_from_json

    cert = replay.read_certificate(path)
    failing = replay._semantics(cert, path)
    from_json = dag_case_from_json if get_family(cert["family"]).kind == "dag" else case_from_json
    for i, v in failing:
        stored = v["counterexample"]["case"]
        if stored is not None:
            replay._rebuild(from_json, stored, f"{path}: verdicts[{i}]", TORCH_DTYPES[v["dtype"]])
    return cert


def _named_path(argument: str, file: str) -> str:
    assert argument.startswith(f"{file}: "), argument
    return argument[len(file) + 2:]


def _exists(data, text: str) -> bool:
    node = data
    for key in re.findall(r"[^.\[\]]+", text):
        if isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        elif isinstance(node, dict) and key in node:
            node = node[key]
        else:
            return False
    return True


@given(m=mutation())
@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_a_mutated_certificate_is_refused_at_its_path_or_reads_back_whole(m, tmp_path):
    path, kind, value = m
    data = _apply(BASE, path, kind, value)
    file = tmp_path / "cert.json"
    file.write_text(json.dumps(data))
    try:
        _replay_checks(str(file))
    except UsageError as exc:
        assert exc.exit_code == 2
        named = _named_path(exc.argument, str(file))
        mutated = _text(path)
        # the path named is the one mutated, above or below it, or a field the mutation made wrong
        assert (named.startswith(mutated) or mutated.startswith(named.split(".unexpected_field")[0])
                or _exists(data, named) or _exists(BASE, named)), (named, mutated, exc.rule)
        assert "\n" not in str(exc) and exc.rule
        return
    from lrnnspec.harness.certificate import Certificate

    from lrnnspec.schema import validate

    cert = Certificate.from_json(data)          # accepted: it reads back as the certificate it says it is
    assert cert.to_json() == validate(data).model_dump()      # (fields left out take their defaults)


@pytest.mark.parametrize("path, value, named", [
    (("verdicts", 0, "counterexample", "case", "dims", "T"), -1, "verdicts[0].counterexample.case.dims.T"),
    (("verdicts", 0, "property"), "telepathy", "verdicts[0].property"),
    (("verdicts", 0, "dtype"), "fp8", "verdicts[0].dtype"),
    (("verdicts",), "forward: fail", "verdicts"),
    (("kernel", "sha256"), 7, "kernel.sha256"),
    (("family",), "no_such_family", "family"),
    # a regime the strategies never draw would silently generate other values
    (("verdicts", 0, "counterexample", "case", "regimes", "q"), "banana", "verdicts[0].counterexample.case"),
    (("verdicts", 0, "counterexample", "case", "regimes", "telepathy"), "normal", "verdicts[0].counterexample.case"),
])
def test_named_mutations(path, value, named, tmp_path):
    file = tmp_path / "cert.json"
    file.write_text(json.dumps(_apply(BASE, path, "set", value)))
    with pytest.raises(UsageError) as exc:
        _replay_checks(str(file))
    assert _named_path(exc.value.argument, str(file)) == named
