"""Fixtures of the command-line contract tests: the hostile files the table's placeholders name."""

from __future__ import annotations

import json
import os

import pytest

from .helpers import PLANTED, _mutated, planted_certificate


@pytest.fixture(scope="session")
def hostile_files(tmp_path_factory) -> dict[str, str]:
    """Named files for the table's placeholders ({ok_dfa}, {a_file}, {cert_bad_dtype} …)."""
    d = tmp_path_factory.mktemp("hostile")
    files = {}

    def put(name, text, binary=False):
        p = d / name
        p.write_bytes(text) if binary else p.write_text(text)
        files[name.rsplit(".", 1)[0]] = str(p)

    put("ok_dfa.json", json.dumps({"alphabet": ["a", "b"], "states": 2, "start": 0, "accept": [1],
                                   "delta": [[1, 0], [0, 1]]}))
    put("dfa_bad_delta.json", json.dumps({"alphabet": ["a", "b"], "states": 2, "start": 0, "accept": [1],
                                          "delta": [[1, 7], [0, 1]]}))
    put("dfa_missing.json", json.dumps({"alphabet": ["a"], "states": 1, "start": 0, "accept": []}))
    put("dfa_extra.json", json.dumps({"alphabet": ["a"], "states": 1, "start": 0, "accept": [], "delta": [[0]],
                                      "x": 1}))
    put("dfa_list.json", "[1, 2, 3]")
    put("dfa_dup_letters.json", json.dumps({"alphabet": ["a", "a"], "states": 1, "start": 0, "accept": [],
                                            "delta": [[0, 0]]}))
    put("dfa_str_states.json", json.dumps({"alphabet": ["a"], "states": "2", "start": 0, "accept": [],
                                           "delta": [[0]]}))
    put("not_json.json", "{not json")
    put("binary.bin", b"\xff\xfe\x00\x01garbage", binary=True)
    put("empty.json", "")
    put("deep.json", "[" * 100000 + "]" * 100000)
    put("a_file.txt", "I am a file, not a directory\n")
    put("kernel_hangs.py", "import time\ntime.sleep(10000)\n\ndef f(q, k, v, g):\n    return q\n")
    put("kernel_exits.py", "import sys\nsys.exit(3)\n\ndef f(q, k, v, g):\n    return q\n")
    put("kernel_segfaults.py", "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n\ndef f(q, k, v, g):\n"
                               "    return q\n")
    put("kernel_raises.py", "raise RuntimeError('broken at import')\n")
    put("kernel_syntax.py", "def f(:\n")
    put("not_callable.py", "f = 3\n")
    cert = planted_certificate()
    put("cert_ok.json", json.dumps(cert))
    mutations = {
        "cert_bad_dtype": (("verdicts", 0, "dtype"), "fp33"),
        "cert_bad_status": (("verdicts", 0, "status"), "maybe"),
        "cert_negative_dim": (("verdicts", 0, "counterexample", "case", "dims", "T"), -4),
        "cert_float_dim": (("verdicts", 0, "counterexample", "case", "dims", "T"), 3.5),
        "cert_huge_dim": (("verdicts", 0, "counterexample", "case", "dims", "T"), 10 ** 12),
        "cert_verdicts_string": (("verdicts",), "forward: fail"),
        "cert_unknown_field": (("surprise",), 1),
        "cert_bool_seed": (("seed",), True),
        "cert_bad_profile": (("profile",), "fast"),
        "cert_no_dtypes": (("dtypes",), []),
        "cert_unknown_property": (("verdicts", 0, "property"), "telepathy"),
        "cert_unknown_family": (("family",), "no_such_family"),
        "cert_case_family": (("verdicts", 0, "counterexample", "case", "family"), "gla"),
        "cert_dtype_not_listed": (("verdicts", 0, "dtype"), "bf16"),
        "cert_bad_convention": (("convention",), "grid"),
        "cert_target_gone": (("kernel", "target"), "rel/missing_kernel.py:f"),
    }
    for name, (path, value) in mutations.items():
        put(f"{name}.json", json.dumps(_mutated(cert, path, value)))
    put("cert_missing_family.json", json.dumps(_mutated(cert, ("family",), delete=True)))
    put("cert_missing_kernel.json", json.dumps(_mutated(cert, ("kernel",), delete=True)))
    put("cert_missing_case.json", json.dumps(_mutated(cert, ("verdicts", 0, "counterexample", "case", "dims"),
                                                      delete=True)))
    clean = _mutated(cert, ("verdicts", 0, "status"), "pass")
    clean["verdicts"][0]["counterexample"] = None
    put("cert_clean.json", json.dumps(clean))
    (d / "a_dir").mkdir()
    files["a_dir"] = str(d / "a_dir")
    files["ro_dir"] = str(d / "ro_dir")
    (d / "ro_dir").mkdir()
    os.chmod(d / "ro_dir", 0o555)
    files["planted"] = str(PLANTED)
    files["long_name"] = "x" * 300
    return files
