"""``lrnnspec prove [NAME ...] [--json]`` and ``lrnnspec prove regular --dfa FILE.json [--max-length L]``.

NAME selects registered checks by dotted-name prefix (``parity`` → ``parity.*``). Exit codes: 0 every
selected check verified/witnessed (``open`` results are listed, not failures), 1 a check failed
(``regular --dfa``: the LRNN disagrees with the DFA on some word), 2 an unknown NAME, a bad DFA file
or a usage error, 3 could not run here. ``regular`` followed by ``--dfa`` dispatches to
``lrnnspec.proofs.regular.prove_regular_cli`` (the regular-language compiler's own report); every
word up to ``--max-length`` (at most :data:`MAX_LENGTH`) is checked, counted exactly.
"""

from __future__ import annotations

import argparse
import json
import os

from lrnnspec.errors import UsageError

from . import checks

MAX_LENGTH = 10_000     # prove regular --max-length: every word checked costs ~2 ms per length step; 1500 ≈ 5 s


def _profile(args) -> str:
    """--profile, else $LRNNSPEC_PROFILE, else ci; checked (exit 2 naming the one that is wrong)."""
    if args.profile is not None:
        name, where = args.profile, "--profile"
    else:
        name, where = os.environ.get("LRNNSPEC_PROFILE", "ci"), "LRNNSPEC_PROFILE"
    if name not in checks.PROFILES:
        raise UsageError(where, f"must be one of {', '.join(checks.PROFILES)}", name)
    return name


def _evidence_text(res) -> str:
    ev = res.evidence
    if "error" in ev:
        return ev["error"]
    if "summary" in ev:
        return ev["summary"]
    parts = []
    for key, val in ev.items():
        if isinstance(val, dict) and "summary" in val:
            parts.append(f"{key}: {val['summary']}")
    if parts:
        return " | ".join(parts)
    if "cases" in ev:
        return f"{len(ev['cases'])} drawn layers; " + json.dumps(ev["cases"][0], ensure_ascii=False)[:160] + " …"
    if "horizons" in ev:
        return "; ".join(f"{n}: " + ", ".join(f"{f} {d}" for f, d in row.items()) for n, row in ev["horizons"].items())
    return json.dumps({k: v for k, v in ev.items() if k not in ("details", "traceback")}, ensure_ascii=False,
                      default=str)[:240]


def _table(results) -> str:
    lines = []
    for r in results:
        lines.append(f"{r.verdict.upper():<9} {r.name}  ({r.seconds:.1f} s)")
        lines.append(f"    result:     {r.result}   [{r.source}]")
        lines.append(f"    hypothesis: {r.hypothesis}")
        lines.append(f"    evidence:   {_evidence_text(r)}")
    counts = {}
    for r in results:
        counts[r.verdict] = counts.get(r.verdict, 0) + 1
    lines.append("summary: " + ", ".join(f"{n} {v}" for v, n in sorted(counts.items())) +
                 f"; {len(results)} checks, {sum(r.seconds for r in results):.1f} s")
    return "\n".join(lines)


def _prove(args) -> int:
    names = list(args.names)
    if names and names[0] == "regular" and args.dfa is not None:
        if len(names) > 1:
            raise UsageError("NAME", "'regular --dfa FILE' takes no further NAME", " ".join(names[1:]))
        if args.profile is not None:
            raise UsageError("--profile", "does not apply to 'prove regular --dfa' (use --max-length)", args.profile)
        checks.text_option("--dfa", args.dfa)
        from lrnnspec.proofs.regular import prove_regular_cli

        return int(prove_regular_cli(args.dfa, args.max_length, args.seed, as_json=args.json))
    if args.dfa is not None or args.max_length_given or args.seed_given:
        raise UsageError("--dfa / --max-length / --seed", "only apply to 'lrnnspec prove regular --dfa FILE'")
    profile = _profile(args)
    import lrnnspec.proofs  # noqa: F401  (registers the checks)
    from lrnnspec.proofs.result import run, select

    try:
        chosen = select(names)
    except KeyError as exc:
        raise UsageError("NAME", str(exc.args[0])) from None
    results = []
    for name in chosen:
        res = run(name, profile)
        results.append(res)
        if not args.json:
            print(_table([res]).rsplit("\nsummary:", 1)[0], flush=True)
    if args.json:
        print(json.dumps({"profile": profile, "checks": [r.to_json() for r in results]}, ensure_ascii=False,
                         default=str, indent=1))
    else:
        print(_table(results).rsplit("\n", 1)[1])
    return 1 if any(r.verdict == "failed" for r in results) else 0


def register(sub) -> None:
    p = sub.add_parser("prove", help="run the expressivity theorems as executable checks", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("names", nargs="*", metavar="NAME",
                   help="check names or dotted prefixes (parity, parity.reflection, ...); "
                        "'regular --dfa FILE' runs the regular-language compiler on a DFA")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--profile", default=None, help="dev | ci | certify (default: $LRNNSPEC_PROFILE or ci)")
    p.add_argument("--dfa", default=None, help="with NAME 'regular': the DFA JSON file")
    p.add_argument("--max-length", type=checks.nonnegative_int, default=None,
                   help=f"with 'regular --dfa': longest word checked (default 8, at most {MAX_LENGTH:,})")
    p.add_argument("--seed", type=checks.seed, default=None, help="with 'regular --dfa': random seed (default 0)")
    p.set_defaults(func=_prove, validate=_validate)


def _validate(args) -> str | None:
    args.max_length_given, args.seed_given = args.max_length is not None, args.seed is not None
    if args.max_length is not None and args.max_length > MAX_LENGTH:
        raise UsageError("--max-length", f"must be at most {MAX_LENGTH:,} (every word up to it is checked; time "
                                         f"grows with the length)", args.max_length)
    if args.max_length is None:
        args.max_length = 8
    if args.seed is None:
        args.seed = 0
    if args.dfa is not None and (not args.names or args.names[0] != "regular"):
        raise UsageError("--dfa", "needs the NAME 'regular' (lrnnspec prove regular --dfa FILE.json)", args.dfa)
    if args.profile is not None and args.profile not in checks.PROFILES:
        raise UsageError("--profile", f"must be one of {', '.join(checks.PROFILES)}", args.profile)
    return None
