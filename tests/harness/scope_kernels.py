"""Kernels for the scope tests: one that ignores an input it accepts, one that cannot run here, two that
refuse a dtype."""

import torch

from lrnnspec.impls.gated_delta_rule import chunk_gated_delta_rule as _gdn


def ignores_scale(q, k, v, g, beta, scale=None, initial_state=None, output_final_state=False):
    """Takes ``scale`` and never passes it on (fla #47)."""
    return _gdn(q, k, v, g, beta, None, initial_state, output_final_state, chunk_size=64)


def needs_a_gpu_driver(q, k, v, g, beta, scale=None, initial_state=None, output_final_state=False):
    """What a Triton kernel's autotuner says on a machine without a GPU driver."""
    raise RuntimeError("0 active drivers ([]). There should only be one.")


def enters_the_inputs_cuda_device(q, k, v, g, beta, scale=None, initial_state=None, output_final_state=False):
    """mamba_ssm's Triton ops: ``with torch.cuda.device(x.device.index)`` — index None on a CPU tensor."""
    with torch.cuda.device(q.device.index):
        return _gdn(q, k, v, g, beta, scale, initial_state, output_final_state, chunk_size=64)


def refuses_fp32(q, k, v, g, beta, scale=None, initial_state=None, output_final_state=False):
    """fla's chunk_delta_rule: "does not support float32. Please use bfloat16." — right in bf16."""
    assert q.dtype != torch.float32, "does not support float32. Please use bfloat16."
    return _gdn(q, k, v, g, beta, scale, initial_state, output_final_state, chunk_size=64)


def refuses_bf16(q, k, v, g, beta, scale=None, initial_state=None, output_final_state=False):
    """A float32 workspace mixed with bf16 inputs (fla's naive chunkwise references)."""
    if q.dtype == torch.bfloat16:
        raise RuntimeError("expected m1 and m2 to have the same dtype, but got: float != c10::BFloat16")
    return _gdn(q, k, v, g, beta, scale, initial_state, output_final_state, chunk_size=64)
