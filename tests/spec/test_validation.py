"""Every validation rule raises a SpecError subclass that names the argument; nothing is clamped."""

import numpy as np
import pytest
import torch

from lrnnspec.spec import (
    DomainError, NonFiniteError, OptionError, ShapeError, SpecError, UnknownFamilyError, VarlenError, evaluate,
)

from ._helpers import draw


def case(id_, family, mutate, error, argument, **kw):
    return pytest.param(family, mutate, error, argument, kw, id=id_)


def set_(name, value):
    def f(x):
        x[name] = value(x[name]) if callable(value) else value
    return f


def poke(name, index, value):
    def f(x):
        x[name] = x[name].copy()
        x[name][index] = value
    return f


CASES = [
    case("wrong-rank", "delta_rule", set_("q", lambda q: q[0]), ShapeError, "q"),
    case("T-mismatch", "simple_gla", set_("v", lambda v: v[:, :-1]), ShapeError, "v"),
    case("K-mismatch", "gla", set_("k", lambda k: k[..., :-1]), ShapeError, "k"),
    case("heads-not-multiple", "gated_delta_rule", lambda x: x.update(
        {n: np.concatenate([x[n], x[n][:, :, :1]], 2) for n in ("v", "g", "beta")}), ShapeError, "v"),
    case("gate-heads-mismatch", "gated_delta_rule", set_("g", lambda g: g[:, :, :1]), ShapeError, "g"),
    case("nan", "linear_attention", poke("q", (0, 1, 0, 0), np.nan), NonFiniteError, "q"),
    case("inf", "delta_rule", poke("beta", (0, 0, 0), np.inf), NonFiniteError, "beta"),
    case("positive-log-gate", "simple_gla", poke("g", (0, 2, 1), 0.25), DomainError, "g"),
    case("positive-gla-gate", "gla", poke("g", (0, 2, 1, 0), 1e-9), DomainError, "g"),
    case("beta-above-2", "delta_rule", poke("beta", (0, 3, 0), 2.5), DomainError, "beta"),
    case("beta-negative", "delta_product", poke("beta", (0, 3, 0), -0.1), DomainError, "beta"),
    case("beta-above-declared-range", "gated_delta_rule", poke("beta", (0, 3, 0), 1.5), DomainError, "beta",
         eigenvalue_range="[0,1]"),
    case("non-unit-key", "delta_rule", set_("k", lambda k: k * 1.01), DomainError, "k"),
    case("non-unit-key-product", "delta_product", set_("k", lambda k: k * 0.5), DomainError, "k"),
    case("interleave-not-multiple", "delta_product", set_("k", lambda k: k[:, :-1]), ShapeError, "k"),
    case("positive-A", "mamba", poke("A", (0, 0), 0.5), DomainError, "A"),
    case("negative-delta", "mamba", poke("delta", (0, 0, 0), -0.5), DomainError, "delta"),
    case("negative-dt", "mamba2", poke("dt", (0, 0, 0), -0.5), DomainError, "dt"),
    case("mamba2-groups", "mamba2", lambda x: x.update({n: np.concatenate([x[n]] * 3, 2) for n in ("B", "C")}),
         ShapeError, "x"),
    case("mamba2-B-vs-C", "mamba2", set_("C", lambda c: np.concatenate([c] * 2, 2)), ShapeError, "C"),
    case("retention-gamma", "retention", set_("gamma", np.array([0.5, 1.5])), DomainError, "gamma"),
    case("kda-positive-gate", "kda", poke("g", (0, 2, 1, 0), 1e-9), DomainError, "g"),
    case("kda-head-wise-gate", "kda", set_("g", lambda g: g[..., 0]), ShapeError, "g"),
    case("kda-gate-key-dim", "kda", set_("g", lambda g: g[..., :-1]), ShapeError, "g"),
    case("kda-beta-above-2", "kda", poke("beta", (0, 3, 0), 2.5), DomainError, "beta"),
    case("kda-non-unit-key", "kda", set_("k", lambda k: k * 0.9), DomainError, "k"),
    case("gdn2-erase-gate-above-2", "gdn2", poke("b", (0, 1, 0, 0), 2.01), DomainError, "b"),
    case("gdn2-erase-gate-above-declared", "gdn2", poke("b", (0, 1, 0, 0), 1.5), DomainError, "b",
         eigenvalue_range="[0,1]"),
    case("gdn2-negative-write-gate", "gdn2", poke("w", (0, 1, 0, 0), -0.5), DomainError, "w"),
    case("gdn2-write-gate-on-keys", "gdn2", set_("w", lambda w: np.ones(w.shape[:-1] + (3,))), ShapeError, "w"),
    case("gdn2-no-gva", "gdn2", lambda x: x.update({n: np.concatenate([x[n]] * 2, 2) for n in ("v", "w")}),
         ShapeError, "v"),
    case("comba-positive-gate", "comba", poke("g", (0, 2, 1), 0.5), DomainError, "g"),
    case("comba-key-channel-gate", "comba", set_("g", lambda g: np.repeat(g[..., None], 3, -1)), ShapeError, "g"),
    case("comba-read-key-dim", "comba", set_("p", lambda p: p[..., :-1]), ShapeError, "p"),
    case("comba-beta-above-2", "comba", poke("beta", (0, 0, 1), 2.5), DomainError, "beta"),
    case("comba-non-unit-key", "comba", set_("k", lambda k: 2 * k), DomainError, "k"),
    case("rwkv6-positive-gate", "rwkv6", poke("w", (0, 2, 1, 0), 1e-9), DomainError, "w"),
    case("rwkv6-head-wise-gate", "rwkv6", set_("w", lambda w: w[..., 0]), ShapeError, "w"),
    case("rwkv6-bonus-per-token", "rwkv6", set_("u", lambda u: np.broadcast_to(u, (2, 7) + u.shape)), ShapeError, "u"),
    case("rwkv6-bonus-key-dim", "rwkv6", set_("u", lambda u: u[:, :-1]), ShapeError, "u"),
    case("rwkv6-nan-bonus", "rwkv6", poke("u", (1, 0), np.nan), NonFiniteError, "u"),
    case("rwkv6-no-gva", "rwkv6", set_("v", lambda v: np.concatenate([v] * 2, 2)), ShapeError, "v"),
    case("lightning-layer-past-depth", "lightning_attn", lambda x: None, OptionError, "layer_idx", layer_idx=13,
         num_layers=12),
    case("lightning-negative-layer", "lightning_attn", lambda x: None, OptionError, "layer_idx", layer_idx=-1,
         num_layers=12),
    case("lightning-bool-layer", "lightning_attn", lambda x: None, OptionError, "layer_idx", layer_idx=True,
         num_layers=12),
    case("lightning-no-layers", "lightning_attn", lambda x: None, OptionError, "num_layers", num_layers=0),
    case("lightning-depth-missing", "lightning_attn", lambda x: None, OptionError, "num_layers", layer_idx=3),
    case("lightning-no-gva", "lightning_attn", set_("v", lambda v: np.concatenate([v] * 2, 2)), ShapeError, "v"),
    case("lightning-layer-and-decays", "lightning_attn", set_("g_gamma", np.array([0.0, -1.0])), OptionError,
         "layer_idx", layer_idx=1, num_layers=4),
    case("hgrn-positive-gate", "hgrn", poke("g", (0, 2, 1), 1e-9), DomainError, "g"),
    case("hgrn-gate-channels", "hgrn", set_("g", lambda g: g[..., :-1]), ShapeError, "g"),
    case("hgrn-headed-input", "hgrn", set_("x", lambda x: x[:, :, None]), ShapeError, "x"),
    case("hgrn-nan", "hgrn", poke("x", (1, 0, 0), np.nan), NonFiniteError, "x"),
    case("oja-positive-gate", "gated_oja_rule", poke("gv", (0, 2, 1, 0), 1e-9), DomainError, "gv"),
    case("oja-gate-on-keys", "gated_oja_rule", set_("gv", lambda g: np.ones(g.shape[:-1] + (3,)) * -0.5), ShapeError,
         "gv"),
    case("oja-non-unit-v", "gated_oja_rule", set_("v", lambda v: 2 * v), DomainError, "v"),
    case("oja-beta-above-2", "gated_oja_rule", poke("beta", (0, 3, 0), 2.5), DomainError, "beta"),
    case("momentum-positive-log-mu", "momentum_delta_rule", poke("log_mu", (0, 1, 0), 0.5), DomainError, "log_mu"),
    case("momentum-beta-above-1", "momentum_delta_rule", poke("beta", (0, 1, 0), 1.5), DomainError, "beta"),
    case("momentum-negative-eta", "momentum_delta_rule", poke("eta", (0, 1, 0), -0.1), DomainError, "eta"),
    case("momentum-non-unit-p", "momentum_delta_rule", set_("p", lambda p: 3 * p), DomainError, "p"),
    case("momentum-p-on-values", "momentum_delta_rule", set_("p", lambda p: p[..., :2]), ShapeError, "p"),
    case("momentum-bad-option", "momentum_delta_rule", lambda x: None, OptionError, "use_p_times_alpha",
         use_p_times_alpha="yes"),
    case("precond-positive-gate", "precond_kda", poke("g_atk", (0, 1, 0), 0.5), DomainError, "g_atk"),
    case("precond-head-wise-g", "precond_kda", set_("g", lambda g: g[..., 0]), ShapeError, "g"),
    case("precond-beta-atk-above-1", "precond_kda", poke("beta_atk", (0, 1, 0), 1.5), DomainError, "beta_atk"),
    case("precond-x-below-1", "precond_kda", lambda x: None, OptionError, "x", x=0.5),
    case("precond-eps-zero", "precond_kda", lambda x: None, OptionError, "eps", eps=0.0),
    case("precond-center-nan", "precond_kda", lambda x: None, OptionError, "log_atk_scale", log_atk_scale=float("nan")),
    case("based-no-gva", "based", set_("v", lambda v: np.concatenate([v] * 2, 2)), ShapeError, "v"),
    case("based-eps-zero", "based", lambda x: None, OptionError, "eps", eps=0.0),
    case("based-norm-choice", "based", lambda x: None, OptionError, "use_norm", use_norm="yes"),
    case("based-nan-key", "based", poke("k", (0, 1, 0, 0), np.nan), NonFiniteError, "k"),
    case("rebased-key-dim", "rebased", set_("k", lambda k: k[..., :-1]), ShapeError, "k"),
    case("rebased-eps-negative", "rebased", lambda x: None, OptionError, "eps", eps=-1e-6),
    case("mesa-lamb-zero", "mesa_net", poke("lamb", (1, 0), 0.0), DomainError, "lamb"),
    case("mesa-lamb-negative", "mesa_net", poke("lamb", (0, 2), -0.5), DomainError, "lamb"),
    case("mesa-lamb-per-head", "mesa_net", set_("lamb", lambda lamb: lamb[:, 0]), ShapeError, "lamb"),
    case("mesa-beta-above-1", "mesa_net", poke("beta", (0, 1, 0), 1.5), DomainError, "beta"),
    case("mesa-key-wise-gate", "mesa_net", set_("g", lambda g: np.repeat(g[..., None], 3, -1)), ShapeError, "g"),
    case("mesa-no-gva", "mesa_net", set_("v", lambda v: np.concatenate([v] * 2, 2)), ShapeError, "v"),
    case("loglinear-positive-gate", "log_linear_attn", poke("g", (0, 2, 1), 0.5), DomainError, "g"),
    case("loglinear-key-wise-gate", "log_linear_attn", set_("g", lambda g: np.repeat(g[..., None], 3, -1)),
         ShapeError, "g"),
    case("loglinear-levels-per-key-head", "log_linear_attn", set_("level_scales", lambda s: s[:, :, :1]),
         ShapeError, "level_scales"),
    case("loglinear-levels-no-level-axis", "log_linear_attn", set_("level_scales", lambda s: s[..., 0]),
         ShapeError, "level_scales"),
    case("loglinear-nan-level", "log_linear_attn", poke("level_scales", (0, 1, 0, 0), np.nan), NonFiniteError,
         "level_scales"),
    case("loglinear-scale-negative", "log_linear_attn", lambda x: None, OptionError, "scale", scale=-1.0),
    case("gsa-positive-gate", "gsa", poke("g", (0, 1, 0, 0), 0.5), DomainError, "g"),
    case("gsa-head-wise-gate", "gsa", set_("g", lambda g: g[..., 0]), ShapeError, "g"),
    case("gsa-slots-mismatch", "gsa", set_("g", lambda g: g[..., :1]), ShapeError, "g"),
    case("gsa-no-gva", "gsa", set_("v", lambda v: np.concatenate([v] * 2, 2)), ShapeError, "v"),
    case("gsa-inf-slot-weight", "gsa", poke("s", (0, 1, 0, 0), np.inf), NonFiniteError, "s"),
    case("unknown-input", "delta_rule", set_("w", np.zeros(1)), SpecError, "w"),
    case("missing-input", "delta_rule", lambda x: x.pop("beta"), SpecError, "beta"),
    case("complex", "delta_rule", set_("v", lambda v: v.astype(complex)), SpecError, "v"),
    case("strings", "delta_rule", set_("v", np.array(["a"])), SpecError, "v"),
    case("unknown-option", "delta_rule", lambda x: None, OptionError, "chunk_size", chunk_size=64),
    case("bad-choice", "mamba", lambda x: None, OptionError, "eigenvalue_range", eigenvalue_range="[-2,2]"),
    case("bad-scale", "delta_rule", lambda x: None, OptionError, "scale", scale=-1.0),
    case("nan-scale", "gla", lambda x: None, OptionError, "scale", scale=float("nan")),
]


@pytest.mark.parametrize("family,mutate,error,argument,options", CASES)
def test_invalid_input_is_rejected_naming_the_argument(family, mutate, error, argument, options):
    x, init = draw(family, initial_state=False)
    mutate(x)
    with pytest.raises(error) as info:
        evaluate(family, x, **options)
    assert info.value.argument == argument
    assert str(info.value).startswith(f"{argument}: ")


def _varlen_inputs(T=6):
    x, _ = draw("gated_delta_rule", initial_state=False, B=1, T=T)
    return x


@pytest.mark.parametrize("cu,why", [
    (np.array([0, 3, 6], dtype=np.int32), "int64"),
    (torch.tensor([0, 3, 6], dtype=torch.int32), "int64"),
    (np.array([1, 3, 6]), "start at 0"),
    (np.array([0, 4, 3, 6]), "non-decreasing"),
    (np.array([0, 3, 5]), "end at T"),
    (np.array([[0, 3, 6]]), "1-D"),
    (np.array([0]), "1-D of length"),
])
def test_inconsistent_cu_seqlens_is_rejected(cu, why):
    with pytest.raises(VarlenError, match=why) as info:
        evaluate("gated_delta_rule", _varlen_inputs(), cu_seqlens=cu)
    assert info.value.argument == "cu_seqlens"


def test_cu_seqlens_requires_batch_one():
    x, _ = draw("gated_delta_rule", initial_state=False, B=2, T=6)
    with pytest.raises(VarlenError, match="B = 1"):
        evaluate("gated_delta_rule", x, cu_seqlens=np.array([0, 6]))


@pytest.mark.parametrize("init,why", [
    (np.zeros((1, 2, 3, 2)), "N = 2 sequences"),
    (np.zeros((2, 2, 2, 3)), r"\[N,HV,K,V\]"),
    ({"S": np.zeros((2, 2, 3, 2)), "z": np.zeros(1)}, "unknown components"),
    (np.full((2, 2, 3, 2), np.nan), "finite"),
])
def test_bad_initial_state_is_rejected(init, why):
    x, _ = draw("delta_rule", initial_state=False, B=1, T=6)
    with pytest.raises(SpecError, match=why) as info:
        evaluate("delta_rule", x, initial_state=init, cu_seqlens=np.array([0, 2, 6]))
    assert info.value.argument == "initial_state"


def test_multi_part_state_must_be_complete():
    x, init = draw("mlstm")
    with pytest.raises(ShapeError, match="'m' missing"):
        evaluate("mlstm", x, initial_state={"C": init["C"], "n": init["n"]})
    with pytest.raises(ShapeError, match="3 components"):
        evaluate("mlstm", x, initial_state=init["C"])


def test_unknown_family():
    with pytest.raises(UnknownFamilyError, match="known families: .*linear_attention") as info:
        evaluate("deltanet", {})
    assert info.value.argument == "family"


def test_unit_key_check_can_be_declined_and_tolerance_follows_the_dtype():
    x, _ = draw("delta_rule", initial_state=False)
    evaluate("delta_rule", {**x, "k": x["k"] * 1.01}, require_unit_keys=False)
    # keys rounded to bf16 are within 4·eps(bf16) of unit norm: accepted when given as bf16
    import ml_dtypes
    evaluate("delta_rule", {**x, "k": x["k"].astype(ml_dtypes.bfloat16)})
    with pytest.raises(DomainError):
        evaluate("delta_rule", {**x, "k": x["k"].astype(ml_dtypes.bfloat16).astype(np.float64)})


def test_inputs_are_not_modified():
    x, init = draw("gated_delta_rule")
    copies = {k: v.copy() for k, v in x.items()}
    init_copy = init.copy()
    evaluate("gated_delta_rule", x, initial_state=init, engine="emulate:bf16")
    for k in x:
        assert np.array_equal(x[k], copies[k])
    assert np.array_equal(init, init_copy)


def test_torch_tensors_are_accepted():
    x, init = draw("simple_gla")
    a = evaluate("simple_gla", x, initial_state=init)
    b = evaluate("simple_gla", {k: torch.from_numpy(v) for k, v in x.items()}, initial_state=torch.from_numpy(init))
    assert np.array_equal(a.output, b.output)


def test_log_linear_position_beyond_counting_is_rejected():
    x, init = draw("log_linear_attn", B=1, T=4)
    init["position"] = np.full(init["position"].shape, 2.0 ** 60)
    with pytest.raises(DomainError, match="position") as info:
        evaluate("log_linear_attn", x, initial_state=init)
    assert info.value.argument == "initial_state"
