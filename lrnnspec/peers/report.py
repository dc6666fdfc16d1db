"""``reports/conformance-peers.md`` and ``.json``: the field's functions certified against the spec.

One row per function × dtype: verdict, scope (what it does not support, in its own words), worst
normalized error, failing properties with a one-line diagnosis and the finding that explains each,
time, and the exact commands that reproduce the certificate and replay its counterexamples. Below
the table one section per finding (:mod:`.findings`): the shrunk counterexample, expected against
observed, the cause in the peer's source and its kind. A failure no finding explains is listed as
such — never hidden.
"""

from __future__ import annotations

import shlex

from lrnnspec.harness.certificate import certificate_stem
from lrnnspec.harness.scope import Scope

from .backends import PEER_BACKENDS, version_of
from .findings import explain


def _commands(impl, dtype: str, args, certs: str, cert) -> tuple[str, str | None]:
    """(the ``lrnnspec certify`` command that reproduces this row, the ``lrnnspec replay`` command
    when it has counterexamples)."""
    examples = args.examples
    if impl.budget.get("examples") is not None:
        examples = min(examples or impl.budget["examples"], impl.budget["examples"])
    words = ["lrnnspec", "certify", impl.target, "--family", impl.family]
    words += ["--convention", impl.convention] if impl.convention else []
    words += ["--dtype", dtype, "--profile", args.profile, "--seed", str(args.seed)]
    words += ["--examples", str(examples)] if examples else []
    words += ["--max-len", str(impl.budget["max_len"])] if impl.budget.get("max_len") else []
    words += [w for k, v in impl.env.items() for w in ("--env", f"{k}={v}")]
    words += [w for d, c in impl.contracts.items() if d == dtype for w in ("--contract", f"{d}={c}")]
    words += ["--device", args.device] if args.device != "cpu" else []
    words += ["--out", f"{args.out}/{certs}"]
    replay = None
    if not isinstance(cert, str) and any(v.counterexample for v in cert.verdicts if v.dtype == dtype):
        replay = f"lrnnspec replay {args.out}/{certs}/{certificate_stem(impl.family, impl.target)}.json"
    return shlex.join(words), replay


def _diagnosis(verdict) -> str:
    """The first clause of a failure's message, one line."""
    message = (verdict.counterexample or {}).get("message") or verdict.reason
    line = message.strip().splitlines()[0] if message.strip() else verdict.status
    return line if len(line) <= 160 else line[:157] + "…"


def records(rows, dtypes, args, certs: str) -> list[dict]:
    """One record per (implementation, dtype): what the table and the JSON show."""
    out = []
    for impl, cert in rows:
        for dtype in dtypes:
            rec = {"backend": impl.backend, "family": impl.family, "target": impl.target, "form": impl.form,
                   "dtype": dtype, "env": dict(impl.env), "budget": dict(impl.budget)}
            rec["certify"], rec["replay"] = _commands(impl, dtype, args, certs, cert)
            if isinstance(cert, str):
                out.append(rec | {"verdict": "could not run here", "reason": cert})
                continue
            vs = [v for v in cert.verdicts if v.dtype == dtype]
            if cert.could_not_run:
                out.append(rec | {"verdict": "could not run here", "reason": cert.could_not_run})
                continue
            refused = (cert.scope or {}).get("dtypes", {}).get(dtype)
            if refused is not None:
                out.append(rec | {"verdict": "unsupported", "reason": f"the function refuses {dtype}: {refused}"})
                continue
            if not vs:
                allowed = ", ".join(impl.budget.get("dtypes", ()))
                out.append(rec | {"verdict": "not run", "reason": f"runs here in {allowed} only (Triton's "
                                                                   "interpreter: numpy has no bf16)"})
                continue
            failing = [{"property": v.property, "status": v.status, "diagnosis": _diagnosis(v),
                        "finding": (f.id if (f := explain(impl.target, v.property, dtype)) else None),
                        "counterexample": v.counterexample}
                       for v in vs if v.status in ("fail", "error")]
            verdict = "certified" if not failing else "not certified" if any(
                f["status"] == "fail" for f in failing) else "harness error"
            out.append(rec | {
                "verdict": verdict, "scope": cert.scope, "lengths": cert.lengths,
                "worst": max((v.worst.get("worst_normalized", 0.0) for v in vs if v.worst), default=0.0),
                "max_abs_error": max((v.worst.get("max_abs_error", 0.0) for v in vs if v.worst), default=0.0),
                "failing": failing, "seconds": sum(v.seconds for v in vs),
                "shims": sorted(k for k in impl.env if k.startswith("LRNNSPEC_"))})
    return out


def rows_json(rows, dtypes, args, certs: str) -> dict:
    from lrnnspec import __version__

    backends = sorted({impl.backend for impl, _ in rows})
    return {"lrnnspec": __version__, "device": args.device, "profile": args.profile, "seed": args.seed,
            "versions": {b: version_of(b) for b in backends}, "rows": records(rows, dtypes, args, certs)}


def _scope_cell(rec: dict) -> str:
    if not rec.get("scope"):
        return ""
    scope = Scope(**rec["scope"])
    cell = scope.line()
    if rec.get("lengths") and rec["budget"].get("max_len"):
        cell += f"; T ≤ {rec['lengths']['max']} here"
    return cell


def render_peers(rows, dtypes, args, seconds: float, certs: str, note: str = "") -> str:
    from lrnnspec import __version__
    from lrnnspec.peers.findings import FINDINGS

    data = rows_json(rows, dtypes, args, certs)
    recs = data["rows"]
    versions = ", ".join(dict.fromkeys(f"{PEER_BACKENDS[b].distribution} {v or '(not installed)'}"
                                       for b, v in data["versions"].items()))
    lines = ["# Conformance — the field's kernels against the spec", "",
             f"Generated by `lrnnspec conformance --backend {','.join(data['versions'])}` (lrnnspec {__version__}; "
             f"{versions}; device `{args.device}`; profile `{args.profile}`, seed {args.seed}; {seconds:.0f} s). "
             "Every function is called as its users call it — its own names, layout and defaults — with no "
             "wrapper: the conventions, the table of known functions (`lrnnspec.peers.known`) and the negotiated "
             "scope absorb the differences. *scope* lists what a function does not support, as it said so; "
             "*worst* is the largest normalized error (≤ 1 passes). Each row's certificate is in "
             f"`{certs}/`; its commands are under [Reproduce](#reproduce).", "", *([note, ""] if note else [])]
    interpreted = sorted({r["target"].split(":")[1] for r in recs if r["env"].get("TRITON_INTERPRET") == "1"})
    if interpreted:
        lines += ["Rows run in Triton's interpreter on the CPU with lrnnspec's first-config autotuning shim "
                  "(`LRNNSPEC_TRITON_AUTOTUNE=first`, installed in the kernel's process only): "
                  f"{', '.join(f'`{n}`' for n in interpreted)}. The interpreter takes about 0.1 s per time step, "
                  "so these draw fewer, shorter cases (T ≤ 72, past one chunk of 64) in fp32 only.", ""]
    lines += ["| family | function | form | backend | dtype | verdict | scope | worst | failing properties | "
              "time (s) |", "|---|---|---|---|---|---|---|---:|---|---:|"]
    lines += [table_line(r) for r in recs]
    lines += ["", summary_line(recs)]
    lines += _findings_section(recs, FINDINGS)
    lines += ["", "## Reproduce", ""]
    lines += [reproduce_line(r) for r in recs]
    return "\n".join(lines) + "\n"


def failing_cell(r: dict) -> str:
    """The failing-properties cell of a row: each failure's one-line diagnosis and the finding that
    explains it."""
    failing = "; ".join(
        f"{f['property']}: {f['diagnosis']}" + (f" → [{f['finding']}](#{f['finding']})" if f["finding"] else
                                               " → *not yet analysed*")
        for f in r["failing"]) or "—"
    return failing.replace("|", "∣")


def table_line(r: dict) -> str:
    fn = f"`{r['target'].split(':')[1]}`"
    if r["verdict"] in ("could not run here", "not run", "unsupported"):
        return (f"| {r['family']} | {fn} | {r['form']} | {r['backend']} | {r['dtype']} | {r['verdict']} | "
                f"{r['reason']} |  |  |  |")
    verdict = "certified" if r["verdict"] == "certified" else f"**{r['verdict']}**"
    return (f"| {r['family']} | {fn} | {r['form']} | {r['backend']} | {r['dtype']} | {verdict} | "
            f"{_scope_cell(r)} | {r['worst']:.3g} | {failing_cell(r)} | {r['seconds']:.1f} |")


def summary_line(recs: list[dict]) -> str:
    certified = sum(r["verdict"] == "certified" for r in recs)
    return (f"{certified} of {len(recs)} rows certified within their scope; "
            f"{sum(r['verdict'] == 'not certified' for r in recs)} not certified; "
            f"{sum(r['verdict'] == 'unsupported' for r in recs)} in a dtype the function refuses; "
            f"{sum(r['verdict'] in ('could not run here', 'not run') for r in recs)} not run here.")


def reproduce_line(r: dict) -> str:
    return f"- `{r['target']}` {r['dtype']}: `{r['certify']}`" + (f" · `{r['replay']}`" if r["replay"] else "")


KIND_LINES = {"certifier": "the certifier's, not the peer's (fixed; the counterexample no longer reproduces)"}


def _findings_section(recs: list[dict], findings) -> list[str]:
    seen = {f["finding"] for r in recs for f in r.get("failing", ()) if f["finding"]}
    lines = ["", "## Findings", ""]
    if not seen and not any(f["finding"] is None for r in recs for f in r.get("failing", ())):
        return lines + ["No property failed."]
    for finding in findings:
        if finding.id not in seen:
            continue
        hits = [(r, f) for r in recs for f in r.get("failing", ()) if f["finding"] == finding.id]
        functions = sorted({f"`{r['target']}` ({r['dtype']})" for r, _ in hits})
        kind = KIND_LINES.get(finding.kind, finding.kind)
        lines += [f"### {finding.id}", "", f"**{finding.title}** — {kind}.", "",
                  f"Rows: {', '.join(functions)}.", ""]
        r, f = hits[0]
        ce = f["counterexample"] or {}
        detail = ce.get("detail") or {}
        lines += [f"Minimal counterexample (as shrunk, {f['property']}, {r['dtype']}): `{ce.get('description', '')}`", ""]
        if "expected" in detail:
            lines += [f"Expected {detail['expected']:.6g}, observed {detail['observed']:.6g} at index "
                      f"{detail.get('worst_index')} (allowed error {detail.get('allowed', float('nan')):.3g}).", ""]
        lines += [f"Message: {ce.get('message', f['diagnosis'])}", "", f"Cause: {finding.cause}", "",
                  f"Checked outside the harness in float64: `{finding.check}`.", ""]
    unexplained = [(r, f) for r in recs for f in r.get("failing", ()) if not f["finding"]]
    if unexplained:
        lines += ["### Not yet analysed", ""]
        lines += [f"- `{r['target']}` {f['property']} [{r['dtype']}]: {f['diagnosis']} — "
                  f"`{(f['counterexample'] or {}).get('description', '')}`" for r, f in unexplained]
    return lines
