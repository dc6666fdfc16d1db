"""The certificate's JSON Schema, as pydantic models of the types the harness writes.

:class:`CertificateModel` mirrors :class:`lrnnspec.harness.certificate.Certificate` field for field
(tests/cli checks the two agree, and that the committed ``certificate.schema.json`` is
:func:`json_schema`'s output: regenerate it with ``python -m lrnnspec.schema``). Verdicts mirror
:class:`lrnnspec.harness.verdicts.Verdict`; a counterexample's case mirrors
:class:`lrnnspec.strategies.sequence.Case` or :class:`lrnnspec.strategies.dag.DagCase`.

:func:`validate` turns a parsed certificate into the model, or raises
:class:`~lrnnspec.errors.UsageError` naming the first broken JSON path (``verdicts[3].dtype``) and
the rule. Sizes are bounded (:data:`MAX_DIM`): a certificate cannot ask a replay for more memory
than a counterexample ever needs.

This module imports pydantic, never torch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lrnnspec.errors import UsageError

SCHEMA_FILE = Path(__file__).with_name("certificate.schema.json")
SCHEMA_ID = "https://github.com/lrnnspec/lrnnspec/certificate.schema.json"
MAX_DIM = 1 << 16            # any one dimension of a stored case (T of the long tier is 1024…4096)
MAX_SEED = 2 ** 64

Dtype = Literal["fp32", "fp16", "bf16", "fp64"]
Status = Literal["pass", "fail", "not_applicable", "unsupported", "error"]
DimInt = Annotated[int, Field(ge=0, le=MAX_DIM)]
Name = Field(min_length=1, max_length=4096)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class KernelIdentity(_Model):
    """Import path, sha256 over the kernel's package sources, the modules covered; ``directory``: the
    working directory of the certify run (a relative file target is found from there)."""

    target: str = Name
    function: Optional[str] = None
    sha256: str
    sources: list[str] = Field(default_factory=list)
    directory: Optional[str] = None


class SequenceCase(_Model):
    """lrnnspec.strategies.sequence.Case (values are a function of this structure)."""

    family: str = Name
    dims: dict[str, DimInt]
    regimes: dict[str, str]
    options: dict[str, Any]
    seed: int = Field(ge=0, lt=MAX_SEED)
    segments: Optional[list[DimInt]] = None
    initial_state: Optional[str] = None
    chunk_size: Optional[int] = Field(default=None, ge=1, le=MAX_DIM)
    split: Optional[int] = Field(default=None, ge=0, le=MAX_DIM)


class DagCase(_Model):
    """lrnnspec.strategies.dag.DagCase."""

    family: str = Name
    layout: Literal["chain", "grid", "dag"]
    shape: list[DimInt] = Field(min_length=1, max_length=2)
    direction: Optional[str] = None
    dims: dict[str, DimInt]
    regimes: dict[str, str]
    options: dict[str, Any]
    seed: int = Field(ge=0, lt=MAX_SEED)
    chunk_size: Optional[int] = Field(default=None, ge=1, le=MAX_DIM)


class Counterexample(_Model):
    case: Union[SequenceCase, DagCase, None]
    description: str
    detail: dict[str, Any]
    message: str


class VerdictModel(_Model):
    """lrnnspec.harness.verdicts.Verdict."""

    property: str = Name
    dtype: Dtype
    status: Status
    reason: str = ""
    examples: int = Field(default=0, ge=0)
    seconds: float = Field(default=0.0, ge=0)
    worst: dict[str, Any] = Field(default_factory=dict)
    counterexample: Optional[Counterexample] = None
    traceback: str = ""


class ScopeModel(_Model):
    """lrnnspec.harness.scope.Scope."""

    supported: list[str] = Field(default_factory=list)
    unsupported: dict[str, str] = Field(default_factory=dict)
    constraints: list[str] = Field(default_factory=list)
    ignored: dict[str, str] = Field(default_factory=dict)
    required: list[str] = Field(default_factory=list)
    multiple: int = Field(default=1, ge=1)
    could_not_run: Optional[str] = None
    dtypes: dict[str, str] = Field(default_factory=dict)


class LogStats(_Model):
    file: Optional[str] = None
    kept: int = Field(ge=0)
    dropped: int = Field(ge=0)
    starts: int = Field(default=0, ge=0)


class Lengths(_Model):
    max: int = Field(ge=0, le=MAX_DIM)
    long: Optional[int] = Field(default=None, ge=0, le=MAX_DIM)
    sweep: bool = False          # one case at every boundary length (when the budget covers them)


class Isolation(_Model):
    calls: int = Field(ge=0)
    start_seconds: float = Field(ge=0)
    call_seconds: float = Field(ge=0)
    kernel_seconds: float = Field(ge=0)


class CertificateModel(_Model):
    """lrnnspec.harness.certificate.Certificate as written by ``to_json`` (plus ``certified``)."""

    model_config = ConfigDict(extra="forbid", strict=True, title="lrnnspec certificate",
                              json_schema_extra={"$id": SCHEMA_ID,
                                                 "$schema": "https://json-schema.org/draft/2020-12/schema"})

    kernel: KernelIdentity
    family: str = Name
    convention: str = Name
    dtypes: list[Dtype] = Field(min_length=1)
    device: str = Name
    environment: dict[str, Any]
    spec_version: str
    contracts: dict[Dtype, str]
    tolerance: dict[str, float]
    profile: Literal["dev", "ci", "certify", "pytest"]     # pytest: written by the pytest plugin (its replays)
    seed: int = Field(ge=0, lt=MAX_SEED)
    max_examples: int = Field(ge=1)
    graphs: Optional[dict[str, Any]] = None
    verdicts: list[VerdictModel] = Field(default_factory=list)
    seconds: float = Field(default=0.0, ge=0)
    log: Optional[LogStats] = None
    scope: Optional[ScopeModel] = None
    replayed: int = Field(default=0, ge=0)
    isolation: Optional[Isolation] = None
    lengths: Optional[Lengths] = None
    run: Optional[str] = None
    version: Literal[1, 2, 3] = 3
    certified: bool = False


def json_schema() -> dict:
    """The JSON Schema (draft 2020-12) of a certificate file."""
    return CertificateModel.model_json_schema(mode="validation")


def schema_text() -> str:
    return json.dumps(json_schema(), indent=1, ensure_ascii=False) + "\n"


def json_path(loc) -> str:
    """pydantic's error location as a JSON path: ``verdicts[3].counterexample.case.dims.T`` (the union
    member tags pydantic inserts are dropped)."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("SequenceCase", "DagCase", "none", "function-after[...]") or str(part).startswith(
                ("function-", "nullable[", "union[")):
            continue
        else:
            out += ("." if out else "") + str(part)
    return out or "(the top level)"


def _first(exc: ValidationError) -> dict:
    """The error to report: the deepest one (a union reports each member; the member that got furthest
    is the one the file meant)."""
    errs = exc.errors(include_url=False)
    return max(errs, key=lambda e: len([p for p in e["loc"] if p not in ("SequenceCase", "DagCase")]))


def validate(data: Any, where: str = "") -> CertificateModel:
    """``data`` (parsed JSON) as a certificate, or :class:`UsageError` naming the JSON path."""
    try:
        return CertificateModel.model_validate(data)
    except ValidationError as exc:
        err = _first(exc)
        got = err.get("input")
        shown = got if isinstance(got, (str, int, float, bool, type(None))) else type(got).__name__
        raise UsageError(f"{where}{': ' if where else ''}{json_path(err['loc'])}", err["msg"].lower(), shown,
                         has_got=err["type"] != "missing") from None
