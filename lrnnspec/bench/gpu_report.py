"""Render the pytest-benchmark JSON of :mod:`lrnnspec.bench.gpu_suite` as ``reports/bench-gpu.md`` and a
JSON summary (``reports/bench-gpu.json``).

Input: pytest-benchmark's JSON (``--benchmark-json``), optionally with an ``"outcomes"`` map added by
``lrnnspec bench --device cuda``: benchmark name → why it has no measurement ("skipped: …",
"failed: …"), and ``"notes"``: lines on how the data was gathered, rendered under the header. Every
configuration of :data:`lrnnspec.bench.gpu_suite.CONFIGS` gets a row; one without a measurement shows
its outcome, or ``pending`` when the input holds no measurement at all (the placeholder committed
before a GPU run).

Times are medians over the rounds; TFLOP/s = the configuration's FLOPs (the suite's FLOP model) ÷
median; % of peak compares with the bf16 matmul of the same run; ours/FLA divides our median by
fla-core's for the same family, T and pass (target ≤ ``TARGET``: ✓ met, ✗ missed).
"""

from __future__ import annotations

from lrnnspec.bench import gpu_suite as suite

TARGET = 1.0
COMMAND = "lrnnspec bench --device cuda"
LABELS = {"ours-triton": "ours (Triton)", "fla-triton": "fla-core (Triton)",
          "ours-pytorch-chunk": "ours (PyTorch chunk)"}
FLA_NAMES = {f: f"fla.ops.{f}.chunk_{f}" for f in suite.FAMILIES}


def _stats(entry: dict) -> dict:
    s = entry["stats"]
    return {k: s.get(k) for k in ("median", "mean", "min", "max", "stddev", "iqr", "rounds")}


def summarize(data: dict) -> dict:
    """The report's content as plain data (written as ``bench-gpu.json``)."""
    entries = {b["name"]: b for b in data.get("benchmarks", [])}
    outcomes = data.get("outcomes", {})
    ran = bool(entries or outcomes or data.get("machine_info"))      # a run happened (maybe measuring nothing)
    matmul = entries.get(suite.MATMUL_NAME)
    peak = None
    meta = {}
    if matmul is not None:
        info = matmul.get("extra_info", {})
        peak = info["flops"] / matmul["stats"]["median"]
        meta = {"device": info.get("device_info"), "versions": info.get("versions")}
    elif any(entries.values()):
        first = next(iter(entries.values())).get("extra_info", {})
        meta = {"device": {"name": first["device"]} if "device" in first else None, "versions": None}
    rows = []
    for cfg in suite.CONFIGS:
        entry = entries.get(cfg.name)
        info = entry.get("extra_info", {}) if entry else {}
        row = {"id": cfg.id, "family": cfg.family, "T": cfg.T, "pass": cfg.mode, "impl": cfg.impl,
               "beta_max": cfg.beta_max, "flops": info.get("flops", cfg.flops), "median_s": None, "stats": None,
               "tflops": None, "pct_of_peak": None, "ratio_vs_fla": None, "meets_target": None,
               "rel_err_vs_fla": info.get("rel_err_vs_fla"), "peak_memory_gib": info.get("peak_memory_gib"),
               "status": "measured"}
        if entry is not None:
            row["stats"] = _stats(entry)
            row["median_s"] = median = entry["stats"]["median"]
            row["tflops"] = row["flops"] / median / 1e12
            row["pct_of_peak"] = 100 * row["flops"] / median / peak if peak else None
        else:
            row["status"] = outcomes.get(cfg.name) or ("not run" if ran else "pending")
        rows.append(row)
    reference = {(r["family"], r["T"], r["pass"]): r["median_s"] for r in rows
                 if r["impl"] == suite.REFERENCE and r["beta_max"] == 1.0}
    for r in rows:
        ref = reference.get((r["family"], r["T"], r["pass"]))
        if r["impl"] != suite.REFERENCE and r["median_s"] is not None and ref:
            r["ratio_vs_fla"] = r["median_s"] / ref
            if r["beta_max"] == 1.0:           # β ∈ [0, 2]: FLA is not specified there — no target
                r["meets_target"] = r["ratio_vs_fla"] <= TARGET
    headline = {}
    for mode in suite.PASSES:
        mine = [r for r in rows if r["impl"] == "ours-triton" and r["beta_max"] == 1.0 and r["pass"] == mode]
        judged = [r for r in mine if r["meets_target"] is not None]
        headline[mode] = {"met": sum(r["meets_target"] for r in judged), "judged": len(judged), "rows": len(mine)}
    return {
        "status": "measured" if entries else ("no measurements" if ran else "pending"),
        "command": COMMAND,
        "datetime": data.get("datetime"),
        **meta,
        "workload": {"B": suite.B, "H": suite.H, "K": suite.K, "V": suite.V, "T": list(suite.TS),
                     "dtype": str(suite.DTYPE).removeprefix("torch."), "chunk_size": suite.CHUNK,
                     "passes": list(suite.PASSES), "implementations": list(suite.IMPLS)},
        "matmul": {"n": suite.MATMUL_N, "median_s": matmul["stats"]["median"] if matmul else None,
                   "tflops": peak / 1e12 if peak else None},
        "target_ratio_vs_fla": TARGET,
        "ours_triton_target": headline,
        "notes": list(data.get("notes", [])),
        "rows": rows,
    }


# --- markdown -------------------------------------------------------------------------------------
def _ms(s):
    return "—" if s is None else f"{1e3 * s:.3f}"


def _num(x, fmt):
    return "—" if x is None else format(x, fmt)


def _ratio(r: dict) -> str:
    if r["impl"] == suite.REFERENCE:
        return "1 (reference)" if r["median_s"] is not None else "—"
    if r["ratio_vs_fla"] is None:
        return "—"
    if r["meets_target"] is None:
        return f"({r['ratio_vs_fla']:.2f})"
    return f"{r['ratio_vs_fla']:.2f} {'✓' if r['meets_target'] else '✗'}"


def _label(r: dict) -> str:
    label = LABELS[r["impl"]]
    return label + (f", β ∈ [0, {r['beta_max']:g}]" if r["beta_max"] != 1.0 else "")


def table_row(r: dict) -> str:
    """One markdown table row of a summary row."""
    if r["median_s"] is None:
        cells = [r["status"], "—", "—", "—", "—"]
    else:
        cells = [_ms(r["median_s"]), _num(r["tflops"], ".1f"),
                 "—" if r["pct_of_peak"] is None else f"{r['pct_of_peak']:.1f}%", _ratio(r),
                 _num(r["rel_err_vs_fla"], ".1e")]
    return f"| {r['T']} | {r['pass']} | {_label(r)} | " + " | ".join(cells) + " |"


def _flop_lines() -> list[str]:
    c, k, v = suite.CHUNK, suite.K, suite.V
    gdn = 6 * c * k + 4 * c * v + 6 * k * v + c * c / 3
    lines = [
        "## FLOP model",
        "",
        f"Matmul FLOPs of the chunkwise algorithm (2 per multiply-add, dense {c}×{c} blocks, element-wise work "
        "not counted; `lrnnspec.bench.gpu_suite.forward_flops`), per batch element, head and token, "
        f"C = {c}, K = V = {k}:",
        "",
        "- simple_gla, gla: Q Kᵀ, (A ⊙ Γ) V, Q S, Kᵀ V → 2C(K + V) + 4KV "
        f"= {2 * c * (k + v) + 4 * k * v:,} FLOPs",
        "- gated_delta_rule (UT form): (β ⊙ K) Kᵀ, (I + A)⁻¹ (C³/3), W = Ā(βe^G ⊙ K), U₀ = Ā(β ⊙ V), U₀ − W S, "
        f"Q Kᵀ, (QKᵀ ⊙ Γ) U, Q S, Kᵀ U → 6CK + 4CV + 6KV + C²/3 = {gdn:,.0f} FLOPs",
        "- fwd+bwd = 3 × forward (each matmul's two gradient matmuls; recomputation not counted).",
        "",
    ]
    for f in suite.FAMILIES:
        per_t = ", ".join(f"T = {t}: {suite.forward_flops(f, t) / 1e9:.1f} GFLOP" for t in suite.TS)
        lines.append(f"- {f} forward, B = {suite.B}, H = {suite.H}: {per_t}")
    return lines + [""]


def render_summary(s: dict) -> str:
    w = s["workload"]
    pending = s["status"] == "pending"
    lines = ["# GPU benchmark — our Triton kernels vs fla-core", ""]
    if pending:
        lines += [
            "**Status: pending a GPU.** No CUDA device was available where this report was generated, so "
            "nothing has been measured and this file holds no numbers. On a machine with an NVIDIA GPU, "
            "from the repository root (after `pip install -e '.[test]'`), run:",
            "",
            "```",
            f"{COMMAND}            # writes reports/bench-gpu.md and reports/bench-gpu.json",
            "```",
            "",
            "(`--out DIR` writes elsewhere; `-k EXPR` selects benchmarks, e.g. `-k 'simple_gla and T2048'`.) Without a "
            "GPU the command exits with status 2.",
            "",
            f"- matmul peak: one {s['matmul']['n']}³ bf16 `torch.matmul`, timed in the same run (pending)",
        ]
    else:
        dev = s.get("device") or {}
        ver = s.get("versions") or {}
        dev_text = dev.get("name", "unknown device")
        if "capability" in dev:
            dev_text += f" ({dev['capability']}, {dev['sm_count']} SMs, {dev['memory_gib']} GiB), CUDA {dev['cuda']}"
        ver_text = ", ".join(f"{k} {v}" for k, v in ver.items()) or "versions not recorded"
        lines += [
            f"Generated by `{COMMAND}` (pytest-benchmark; medians over the rounds; every ratio compares two "
            "measurements of the same run).",
            "",
            f"- device: {dev_text}; {ver_text}; {s.get('datetime') or ''}",
        ]
        lines += [f"- note: {n}" for n in s.get("notes", [])]
        mm = s["matmul"]
        lines.append(f"- matmul peak: {_num(mm['tflops'], '.1f')} TFLOP/s ({mm['n']}³ bf16 `torch.matmul`, "
                     f"median {_ms(mm['median_s'])} ms, same run)" if mm["tflops"] else
                     "- matmul peak: not measured in this run (`test_matmul_peak` did not run)")
        for mode, h in s["ours_triton_target"].items():
            lines.append(f"- ours (Triton) vs fla-core, {mode}: target ratio ≤ {s['target_ratio_vs_fla']:.2f} met in "
                         f"{h['met']} of {h['rows']} configurations" +
                         (f" ({h['rows'] - h['judged']} without both measurements)" if h["judged"] < h["rows"] else ""))
    lines += [
        f"- workload: B = {w['B']}, H = {w['H']}, K = V = {w['K']}, T ∈ {{{', '.join(map(str, w['T']))}}}, "
        f"{w['dtype']} inputs, chunk size {w['chunk_size']}; passes: fwd (no grad) and fwd+bwd "
        "(`torch.autograd.grad` of the output against a fixed random dO, all inputs requiring grad)",
        "- implementations: " + "; ".join(f"{LABELS[i]} `{suite.ENTRY_POINTS[i]}`" for i in w["implementations"]),
        "- inputs: gated_delta_rule q, k L2-normalised, β = sigmoid(N(0,1)), g = logsigmoid(N(0,1)) "
        "(plus β = 2·sigmoid(N(0,1)) ∈ [0, 2] rows for ours: FLA is not specified there, so their ratio is "
        "against FLA at β ∈ [0, 1], in parentheses, without a target); gla g = logsigmoid(N(0,1))/16 per key; "
        "simple_gla g = logsigmoid(N(0,1))/16 per head; q, k, v ~ N(0, 1) otherwise",
        f"- target: ours (Triton) time ÷ fla-core time ≤ {s['target_ratio_vs_fla']:.2f} (✓ met, ✗ missed); "
        "the PyTorch chunk form is shown against the same reference for scale",
        "",
    ]
    lines += _flop_lines()
    for fam in suite.FAMILIES:
        lines += [
            f"## {fam} — `{FLA_NAMES[fam]}`",
            "",
            "| T | pass | implementation | time (ms) | TFLOP/s | % of matmul peak | ours / FLA | rel. err vs FLA |",
            "|---:|---|---|---:|---:|---:|---:|---:|",
        ]
        lines += [table_row(r) for r in s["rows"] if r["family"] == fam]
        lines.append("")
    lines += [
        "rel. err vs FLA: ‖o − o_FLA‖ / ‖o_FLA‖ of the forward output on the benchmark's own inputs (fwd rows, "
        "β ∈ [0, 1]), a guard that the timed kernels compute the same thing. "
        + ("`pending`: not measured yet." if pending else
           "A row without a time says why (skipped / failed / not run, e.g. not selected by `-k`)."),
        "",
    ]
    return "\n".join(lines)


def render(data: dict) -> str:
    """pytest-benchmark JSON (+ optional ``outcomes``) → the markdown report."""
    return render_summary(summarize(data))
