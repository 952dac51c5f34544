"""The PPO loss against a NumPy reference, and the network/feature plumbing around it."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcage.ppo import features as F
from jaxcage.ppo.loss import Minibatch, ppo_loss, ppo_loss_terms
from jaxcage.ppo.networks import make_network


def loss_reference(logits, values, b, clip_eps, vf_coef, ent_coef, clip_value, norm_adv):
    logits = logits.astype(np.float64)
    z = logits - logits.max(-1, keepdims=True)
    logp_all = z - np.log(np.exp(z).sum(-1, keepdims=True))
    logp = logp_all[np.arange(len(b["actions"])), b["actions"]]
    ratio = np.exp(logp - b["log_probs"])
    adv = b["advantages"].astype(np.float64)
    if norm_adv:
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    pg = -np.mean(np.minimum(ratio * adv, np.clip(ratio, 1 - clip_eps, 1 + clip_eps) * adv))
    v_err = (values - b["returns"]) ** 2
    if clip_value:
        vc = b["values"] + np.clip(values - b["values"], -clip_eps, clip_eps)
        v_err = np.maximum(v_err, (vc - b["returns"]) ** 2)
    vl = 0.5 * v_err.mean()
    ent = -(np.exp(logp_all) * logp_all).sum(-1).mean()
    total = pg + vf_coef * vl - ent_coef * ent
    kl = np.mean((ratio - 1) - np.log(ratio))
    clipfrac = np.mean(np.abs(ratio - 1) > clip_eps)
    return total, {
        "policy_loss": pg,
        "value_loss": vl,
        "entropy": ent,
        "approx_kl": kl,
        "clip_frac": clipfrac,
    }


def _batch(rng, n=64, a=145):
    logits = rng.normal(size=(n, a)).astype(np.float32)
    b = {
        "actions": rng.integers(0, a, n).astype(np.int32),
        # Behaviour log-probs near the new ones, so some ratios are clipped and some are not.
        "log_probs": None,
        "values": rng.normal(size=n).astype(np.float32),
        "advantages": rng.normal(size=n).astype(np.float32) * 3 + 1,
        "returns": rng.normal(size=n).astype(np.float32) * 2,
    }
    z = logits - logits.max(-1, keepdims=True)
    logp = (z - np.log(np.exp(z).sum(-1, keepdims=True)))[np.arange(n), b["actions"]]
    b["log_probs"] = (logp + rng.normal(size=n) * 0.3).astype(np.float32)
    values = (b["values"] + rng.normal(size=n) * 0.5).astype(np.float32)
    return logits, values, b


@pytest.mark.parametrize("clip_value", [True, False])
@pytest.mark.parametrize("norm_adv", [True, False])
def test_loss_matches_numpy_reference(clip_value, norm_adv):
    logits, values, b = _batch(np.random.default_rng(1))
    coefs = dict(clip_eps=0.2, vf_coef=0.5, ent_coef=0.01)
    mb = Minibatch(inputs=jnp.zeros((len(values), 1)), **{k: jnp.asarray(v) for k, v in b.items()})
    loss, aux = jax.jit(
        ppo_loss_terms, static_argnames=("clip_value_loss", "normalize_advantages")
    )(
        jnp.asarray(logits),
        jnp.asarray(values),
        mb,
        clip_value_loss=clip_value,
        normalize_advantages=norm_adv,
        **coefs,
    )
    ref, ref_aux = loss_reference(
        logits, values, b, clip_value=clip_value, norm_adv=norm_adv, **coefs
    )
    np.testing.assert_allclose(float(loss), ref, rtol=1e-4, atol=1e-5)
    for k, v in ref_aux.items():
        np.testing.assert_allclose(float(aux[k]), v, rtol=1e-4, atol=1e-5, err_msg=k)
    # The batch is built so that clipping is actually exercised.
    assert 0.05 < float(aux["clip_frac"]) < 0.95


def test_loss_gradient_is_finite_and_moves_policy_towards_positive_advantage():
    net = make_network(145, (32, 32), "tanh")
    x = jax.random.normal(jax.random.key(0), (16, 52))
    params = jax.jit(net.init)(jax.random.key(1), x)
    logits, values = jax.jit(net.apply)(params, x)
    logp = jax.nn.log_softmax(logits)[:, 3]
    mb = Minibatch(
        inputs=x,
        actions=jnp.full(16, 3, jnp.int32),
        log_probs=logp,
        values=values,
        advantages=jnp.linspace(0.5, 2.0, 16),
        returns=values,
    )
    coefs = dict(
        clip_eps=0.2, vf_coef=0.5, ent_coef=0.0, clip_value_loss=True, normalize_advantages=False
    )
    grads = jax.jit(jax.grad(lambda p: ppo_loss(p, net.apply, mb, **coefs)[0]))(params)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))
    new = jax.tree.map(lambda p, g: p - 0.1 * g, params, grads)
    new_logp = jax.nn.log_softmax(jax.jit(net.apply)(new, x)[0])[:, 3]
    assert float(new_logp.mean()) > float(logp.mean())


def test_network_shapes_and_initial_policy_near_uniform():
    for hidden in [(64, 64), (32, 32), (128,)]:
        net = make_network(145, hidden, "relu")
        params = jax.jit(net.init)(jax.random.key(0), jnp.zeros((1, 52)))
        logits, value = jax.jit(net.apply)(params, jnp.ones((7, 52)))
        assert logits.shape == (7, 145) and value.shape == (7,)
        probs = jax.nn.softmax(logits)
        assert float(probs.max()) < 2.0 / 145  # small head gain: nearly uniform at the start
        sizes = [params["params"][f"actor_{i}"]["kernel"].shape[1] for i in range(len(hidden))]
        assert tuple(sizes) == hidden


def test_network_gives_the_same_outputs_on_compact_and_float_inputs():
    feats = ("prev_action", "decoys", "time")
    net = make_network(145, (64, 64), "tanh", feats)
    memory = F.update_memory(F.init_memory(), jnp.ones(52, jnp.int32), jnp.int32(77))
    obs = jnp.zeros(52, jnp.int32).at[3].set(1)
    inp = jax.tree.map(lambda a: jnp.stack([a, a]), F.compact_input(obs, memory, feats))
    inp = inp.replace(prev_action=jnp.array([77, -1], jnp.int32))
    x = F.expand_input(inp, feats)
    params = jax.jit(net.init)(jax.random.key(0), x)
    # Same parameter tree as a plain Dense first layer: (input size, hidden) kernels.
    assert params["params"]["actor_0"]["kernel"].shape == (F.input_size(feats), 64)
    assert params["params"]["critic_0"]["kernel"].shape == (F.input_size(feats), 64)
    for a, b in zip(jax.jit(net.apply)(params, inp), jax.jit(net.apply)(params, x), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
