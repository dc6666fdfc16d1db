"""The GPU benchmark suite behind ``lrnnspec bench --device cuda`` (pytest-benchmark, CUDA only).

Issue 7, item 3: our Triton kernels, fla-core's Triton kernels and our PyTorch chunkwise forms,
side by side, on one device in one run, with the device's bf16 matmul rate measured in the same run.
:mod:`lrnnspec.bench.gpu_report` turns the JSON into ``reports/bench-gpu.md`` (+ a JSON summary).

Workload: B = 4, H = 16, K = V = 128, bfloat16 inputs, chunk size 64 (every implementation's
default), T ∈ {2048, 8192}; passes ``fwd`` (under ``torch.no_grad``) and ``fwd+bwd`` (forward with
every input requiring grad, then ``torch.autograd.grad`` of the output against a fixed random dO).

Implementations (FLA-compatible signatures, called with the same keyword arguments):

* ``ours-triton``        ``lrnnspec.kernels.<family>:chunk_<family>``
* ``fla-triton``         ``fla.ops.<family>:chunk_<family>`` (fla-core 0.6.0)
* ``ours-pytorch-chunk`` ``lrnnspec.impls.<family>:chunk_<family>``

Inputs (seeded, drawn in fp32 on the device, then cast to bf16; layout [B, T, H, ...]):

* by role: queries, keys, values ~ N(0, 1), L2-normalised where the family has unit keys (FLA's
  kernel assumes them; we normalise outside the kernel, ``use_qk_l2norm_in_kernel=False``); log
  gates logsigmoid(N(0, 1)) / 16 (GLA's gate temperature 16); write strengths β = sigmoid(N(0, 1))
  ∈ (0, 1). Extra gated_delta_rule rows for ours only: β = 2·sigmoid(N(0, 1)) ∈ (0, 2) (negative
  eigenvalues; FLA's kernel is not specified there, so there is no FLA row to match — the report
  compares them with FLA's β ∈ [0, 1] time, without a target).

Timing: each benchmark warms up (``WARMUP_CALLS`` calls: Triton compilation and autotuning happen
there), estimates one call, then runs ``benchmark.pedantic`` with as many rounds as fit in
``TIME_BUDGET_S`` (clamped to [``MIN_ROUNDS``, ``MAX_ROUNDS``]), one call per round; the timed
function ends with ``torch.cuda.synchronize()`` and an untimed ``torch.cuda.synchronize()`` runs
before each round, so a round measures exactly one call's device work (plus its launch latency).

FLOPs (:func:`forward_flops`, the family's ``chunk_flops`` hook: 2 FLOPs per multiply-add, matmuls
of the chunkwise algorithm with dense C × C blocks as the kernels compute them; element-wise work
not counted). Per batch element, head and token, with chunk size C:

* simple_gla / gla: per chunk Q Kᵀ (2C²K), (A ⊙ Γ) V (2C²V), the inter-chunk read-out Q S (2CKV)
  and the state update Kᵀ V (2CKV): 2C(K + V) + 4KV per token (GLA's key-wise gate only rescales
  Q and K element-wise);
* gated_delta_rule (UT / WY form): A = (β ⊙ K) Kᵀ (2C²K), Ā = (I + A)⁻¹ by forward substitution
  (C³/3), W = Ā (β e^G ⊙ K) (2C²K), U₀ = Ā (β ⊙ V) (2C²V), U = U₀ − W S (2CKV), Q Kᵀ (2C²K),
  (QKᵀ ⊙ Γ) U (2C²V), Q S (2CKV), state update Kᵀ U (2CKV): 6CK + 4CV + 6KV + C²/3 per token.

Backward: every matmul Y = A B has two gradient matmuls of the same size (dA = dY Bᵀ, dB = Aᵀ dY),
so the backward is counted as 2 × forward and fwd+bwd as 3 × forward (:func:`flops`); work a
kernel spends recomputing forward quantities is not counted, so TFLOP/s is "useful" throughput.

Matmul peak: ``test_matmul_peak`` times a ``MATMUL_N``³ bf16 ``torch.matmul`` (2·N³ FLOPs) in the
same run; it also records the device and the versions for the report.

Without CUDA the suite refuses to run (``pytest.exit`` with exit code 2 at the first test); it
still imports and collects, so its parametrisation can be inspected anywhere.
"""

from __future__ import annotations

import math
import platform
import time
from dataclasses import dataclass
from importlib import import_module, metadata, util

import pytest
import torch

from lrnnspec.spec import all_families, get_family

B, H, K, V = 4, 16, 128, 128
TS = (2048, 8192)
CHUNK = 64
DTYPE = torch.bfloat16
# the families with a chunkwise FLOP model and a Triton kernel of ours (a module of lrnnspec.kernels)
FAMILIES = tuple(f.name for f in all_families()
                 if f.chunk_flops is not None and util.find_spec(f"lrnnspec.kernels.{f.name}") is not None)
PASSES = ("fwd", "fwd+bwd")
IMPLS = ("ours-triton", "fla-triton", "ours-pytorch-chunk")
OURS = ("ours-triton", "ours-pytorch-chunk")
REFERENCE = "fla-triton"
WIDE_BETA = 2.0          # the extra gated_delta_rule rows: β ∈ [0, 2], ours only

MATMUL_N = 8192
MATMUL_NAME = "test_matmul_peak"

WARMUP_CALLS = 3
TIME_BUDGET_S = 1.0
MIN_ROUNDS, MAX_ROUNDS = 5, 100

ENTRY_POINTS = {
    "ours-triton": "lrnnspec.kernels.{family}:chunk_{family}",
    "fla-triton": "fla.ops.{family}:chunk_{family}",
    "ours-pytorch-chunk": "lrnnspec.impls.{family}:chunk_{family}",
}

NO_CUDA = ("lrnnspec bench_gpu_suite: no CUDA device is available (torch.cuda.is_available() is False; "
           "torch {torch} built with CUDA {cuda}). This suite only times GPU kernels: run it on a machine with "
           "an NVIDIA GPU (`lrnnspec bench --device cuda`), or `lrnnspec bench` for the CPU suite.")


# --- FLOP model ----------------------------------------------------------------------------------
def forward_flops(family: str, T: int, b: int = B, h: int = H, k: int = K, v: int = V, c: int = CHUNK) -> float:
    """Matmul FLOPs of one chunkwise forward: the family's ``chunk_flops`` hook (see the module
    docstring for the derivations)."""
    fam = get_family(family)
    if fam.chunk_flops is None:
        raise ValueError(f"family: {family!r} declares no chunkwise FLOP model (chunk_flops)")
    return float(fam.chunk_flops({"B": b, "T": T, "H": h, "HV": h, "K": k, "V": v}, c))


def flops(family: str, T: int, mode: str) -> float:
    """FLOPs of one timed call: forward, or forward + backward (= 3 × forward)."""
    if mode not in PASSES:
        raise ValueError(f"mode: must be one of {PASSES}, got {mode!r}")
    return forward_flops(family, T) * (1 if mode == "fwd" else 3)


# --- configurations --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Config:
    family: str
    T: int
    mode: str                 # "fwd" or "fwd+bwd"
    impl: str                 # one of IMPLS
    beta_max: float = 1.0     # gated_delta_rule: β drawn in [0, beta_max]

    @property
    def id(self) -> str:
        mode = "fwd" if self.mode == "fwd" else "fwd_bwd"
        wide = f"-beta0to{self.beta_max:g}" if self.beta_max != 1.0 else ""
        return f"{self.family}-T{self.T}-{mode}-{self.impl}{wide}"

    @property
    def name(self) -> str:
        """The benchmark's name in pytest-benchmark's JSON."""
        return f"test_kernel[{self.id}]"

    @property
    def flops(self) -> float:
        return flops(self.family, self.T, self.mode)

    @property
    def entry_point(self) -> str:
        return ENTRY_POINTS[self.impl].format(family=self.family)


CONFIGS = [Config(f, t, m, i) for f in FAMILIES for t in TS for m in PASSES for i in IMPLS] + [
    Config(f, t, m, i, WIDE_BETA) for f in FAMILIES if get_family(f).with_role("write_strength")
    for t in TS for m in PASSES for i in OURS]


# --- environment ---------------------------------------------------------------------------------
def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def versions() -> dict[str, str]:
    return {"python": platform.python_version(), "torch": torch.__version__, "triton": _version("triton"),
            "fla-core": _version("fla-core"), "lrnnspec": _version("lrnnspec")}


def device_info() -> dict:
    p = torch.cuda.get_device_properties(0)
    return {"name": p.name, "capability": f"sm_{p.major}{p.minor}", "sm_count": p.multi_processor_count,
            "memory_gib": round(p.total_memory / 2 ** 30, 1), "cuda": torch.version.cuda}


@pytest.fixture(scope="module", autouse=True)
def _require_cuda():
    if not torch.cuda.is_available():
        pytest.exit(NO_CUDA.format(torch=torch.__version__, cuda=torch.version.cuda), returncode=2)
    yield


@pytest.fixture(autouse=True)
def _fresh_memory():
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    yield
    torch.cuda.empty_cache()


# --- inputs and implementations --------------------------------------------------------------------
def make_inputs(family: str, T: int, beta_max: float = 1.0, requires_grad: bool = False, seed: int = 0,
                device: str = "cuda") -> dict[str, torch.Tensor]:
    """Keyword arguments of ``chunk_<family>`` (bf16 leaves), drawn as described in the module docstring."""
    gen = torch.Generator(device=device).manual_seed(seed)

    def normal(*shape):
        return torch.randn(*shape, generator=gen, device=device, dtype=torch.float32)

    fam = get_family(family)
    sizes = {"B": B, "T": T, "H": H, "HV": H, "K": K, "V": V}
    x = {}
    for inp in fam.inputs:
        if inp.optional:
            continue
        t = normal(*(sizes[d] for d in inp.dims))
        if inp.name in fam.unit_keys or inp.role == "query" and fam.unit_keys:
            t = torch.nn.functional.normalize(t, dim=-1)      # unit keys, and queries alike
        elif inp.role == "log_gate":
            t = torch.nn.functional.logsigmoid(t) / 16          # GLA's gate temperature 16
        elif inp.role == "write_strength":
            t = beta_max * torch.sigmoid(t)
        elif inp.role not in ("query", "key", "value"):
            raise ValueError(f"family: {family!r} has an input {inp.name!r} of role {inp.role!r}, which this "
                             f"suite does not draw")
        x[inp.name] = t
    return {n: t.to(DTYPE).detach().requires_grad_(requires_grad) for n, t in x.items()}


def load(cfg: Config):
    """The implementation's function; skips only when its module genuinely cannot be imported."""
    module, attr = cfg.entry_point.split(":")
    try:
        mod = import_module(module)
    except ImportError as exc:
        ours = cfg.impl != REFERENCE
        missing = isinstance(exc, ModuleNotFoundError) and exc.name and (module + ".").startswith(exc.name + ".")
        if ours and not missing:
            raise                      # our module exists but is broken: a failure, not a skip
        pytest.skip(f"{cfg.impl}: cannot import {module} ({type(exc).__name__}: {exc})")
    return getattr(mod, attr)


def _sync_time(fn) -> float:
    torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    return time.perf_counter() - start


def timed(benchmark, fn) -> None:
    """Warm up, then time ``fn`` (one call per round, synchronized) with pytest-benchmark."""
    for _ in range(WARMUP_CALLS):
        _sync_time(fn)
    estimate = _sync_time(fn)
    rounds = min(MAX_ROUNDS, max(MIN_ROUNDS, math.ceil(TIME_BUDGET_S / max(estimate, 1e-6))))

    def call():
        fn()
        torch.cuda.synchronize()

    benchmark.pedantic(call, setup=torch.cuda.synchronize, rounds=rounds, iterations=1, warmup_rounds=0)


def _output(out) -> torch.Tensor:
    return out[0] if isinstance(out, (tuple, list)) else out


def _relative_error(ours: torch.Tensor, ref: torch.Tensor) -> float:
    ours, ref = ours.float(), ref.float()
    return float(torch.linalg.vector_norm(ours - ref) / torch.linalg.vector_norm(ref).clamp_min(1e-30))


def _fla_error(cfg: Config, fn, x) -> float | None:
    """‖o_ours − o_FLA‖ / ‖o_FLA‖ on the benchmark's own inputs (β ∈ [0, 1] rows of ours, fwd)."""
    if cfg.impl == REFERENCE or cfg.beta_max != 1.0:
        return None
    try:
        module, attr = ENTRY_POINTS[REFERENCE].format(family=cfg.family).split(":")
        ref = getattr(import_module(module), attr)
    except ImportError:
        return None
    with torch.no_grad():
        return _relative_error(_output(fn(**x)), _output(ref(**x)))


# --- benchmarks -------------------------------------------------------------------------------------
@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: c.id)
def test_kernel(benchmark, cfg: Config):
    fn = load(cfg)
    benchmark.group = f"{cfg.family}-T{cfg.T}-{cfg.mode}"
    benchmark.extra_info.update(family=cfg.family, T=cfg.T, mode=cfg.mode, impl=cfg.impl, beta_max=cfg.beta_max,
                                flops=cfg.flops, entry_point=cfg.entry_point, B=B, H=H, K=K, V=V,
                                dtype=str(DTYPE).removeprefix("torch."), chunk_size=CHUNK,
                                device=torch.cuda.get_device_name(0))
    try:
        if cfg.mode == "fwd":
            x = make_inputs(cfg.family, cfg.T, cfg.beta_max)

            def run():
                with torch.no_grad():
                    fn(**x)

            benchmark.extra_info["rel_err_vs_fla"] = _fla_error(cfg, fn, x)
        else:
            x = make_inputs(cfg.family, cfg.T, cfg.beta_max, requires_grad=True)
            leaves = list(x.values())
            gen = torch.Generator(device="cuda").manual_seed(1)
            do = torch.randn(B, cfg.T, H, V, generator=gen, device="cuda", dtype=torch.float32).to(DTYPE)

            def run():
                torch.autograd.grad(_output(fn(**x)), leaves, do)

        timed(benchmark, run)
    except torch.cuda.OutOfMemoryError as exc:
        torch.cuda.empty_cache()
        pytest.skip(f"CUDA out of memory ({str(exc).splitlines()[0]})")
    benchmark.extra_info["peak_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2 ** 30, 2)


def test_matmul_peak(benchmark):
    gen = torch.Generator(device="cuda").manual_seed(0)
    a, b = (torch.randn(MATMUL_N, MATMUL_N, generator=gen, device="cuda", dtype=torch.float32).to(DTYPE)
            for _ in range(2))
    benchmark.extra_info.update(flops=2.0 * MATMUL_N ** 3, n=MATMUL_N, dtype=str(DTYPE).removeprefix("torch."),
                                device_info=device_info(), versions=versions(),
                                device=torch.cuda.get_device_name(0))
    timed(benchmark, lambda: torch.matmul(a, b))
