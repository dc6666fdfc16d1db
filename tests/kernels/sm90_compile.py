"""Compile chosen lrnnspec Triton kernels for an H100 (sm_90) on a machine without a GPU; print JSON.

Run as a script (Triton must not be in interpreter mode, so not inside the test process):
``python sm90_compile.py FAMILY[,FAMILY] K NAME [NAME ...]``. The families' public functions
(gated_delta_rule, simple_gla, gla; forward and backward) run in that order at B = 1, T = 128, H = 2,
K = V = K on CPU tensors with a stand-in driver whose target is sm_90: each launch of a kernel named on
the command line is compiled (never run — outputs stay zero) and its shared memory recorded; other
launches are skipped. Output: {kernel: {"shared": bytes} | {"error": message}}, first specialization
of each kernel. Exit 3 when this Triton lacks the internals used here (the caller skips)."""

import json
import os
import sys

os.environ.pop("TRITON_INTERPRET", None)
import torch  # noqa: E402

torch.cuda.is_available = lambda: True          # lrnnspec.kernels would otherwise turn on the interpreter
try:
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.runtime.jit import JITFunction
    JITFunction.run, triton.runtime.driver.set_active     # noqa: B018  (the internals this script relies on)
except (ImportError, AttributeError) as exc:
    print(f"unsupported Triton internals: {exc}", file=sys.stderr)
    sys.exit(3)


class Sm90Driver:
    def get_current_device(self):
        return 0

    def get_current_stream(self, device=None):
        return 0

    def get_current_target(self):
        return GPUTarget("cuda", 90, 32)

    def get_active_torch_device(self):
        return torch.device("cpu")

    def is_active(self):
        return True


FAMILIES, K, WANTED = sys.argv[1].split(","), int(sys.argv[2]), set(sys.argv[3:])
result = {}
original_run = JITFunction.run


def compile_only(self, *args, grid, warmup, **kwargs):
    name = self.fn.__name__
    if name in WANTED and name not in result:
        try:
            result[name] = {"shared": original_run(self, *args, grid=grid, warmup=True, **kwargs).metadata.shared}
        except Exception as exc:  # noqa: BLE001 - the compiler's failure is the finding
            result[name] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"}


triton.runtime.driver.set_active(Sm90Driver())
JITFunction.run = compile_only

import lrnnspec.kernels._gated_linear_triton as gated_linear  # noqa: E402
import lrnnspec.kernels.gated_delta_rule as gated_delta  # noqa: E402
from lrnnspec.kernels import gla, simple_gla  # noqa: E402

gated_delta.interpreting = lambda: True          # let the launchers take CPU tensors
gated_linear._INTERPRETED = True
B, T, H = 1, 128, 2


def x(*shape):
    return torch.randn(*shape, dtype=torch.bfloat16).requires_grad_()


q, k, v = x(B, T, H, K), x(B, T, H, K), x(B, T, H, K)
CALLS = {"gated_delta_rule": lambda: gated_delta.chunk_gated_delta_rule(q, k, v, x(B, T, H), x(B, T, H)),
         "simple_gla": lambda: simple_gla.chunk_simple_gla(q, k, v, x(B, T, H)),
         "gla": lambda: gla.chunk_gla(q, k, v, x(B, T, H, K))}
for family in FAMILIES:
    CALLS[family]()[0].float().sum().backward()
print(json.dumps(result))
