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


def refuses_to_return_its_state(q, k, v, g, beta, scale=None, initial_state=None, output_final_state=False):
    """mlstm_kernels' parallel forms: the flag is in the signature, asking for the state raises."""
    assert not output_final_state, "return_last_states is not supported"
    return _gdn(q, k, v, g, beta, scale, initial_state, False, chunk_size=64)[0]


def mesa_net_flat(q, k, v, g, beta, lamb, h_kk_init=None, h_kv_init=None, output_final_state=False):
    """fla-core's mesa_net API: one keyword per state part, ``(o, h_kk, h_kv)`` flat, and V = K required
    (chunk_mesa_net asserts it)."""
    from lrnnspec.impls.mesa_net import recurrent_mesa_net

    assert v.shape == k.shape, "v must be of shape (batch size, seq len, num head, head dim)."
    o, state = recurrent_mesa_net(q, k, v, g, beta, lamb, h_kk_init, h_kv_init, True)
    return (o, *state) if output_final_state else o
