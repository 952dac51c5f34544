"""Workflow-conditioned PPO: train one workflow until it is compliant (or its cap), as one program.

Mirrors the trainer of the workflow project (``workflow_rl/executor_async_train_workflow_rl.py``,
V2, spec §4), built from jaxcage's PPO pieces (``jaxcage.ppo``: the clipped loss, GAE, the
inverse-CDF sampler, the packed-key shuffle):

* the policy input is the 52-bit observation followed by the workflow's 25-dim position x type
  one-hot (``orders.ONEHOT``), the training reward is env + alignment (``WorkflowEnv``);
* every update runs ``episodes_per_update`` envs for exactly one 100-step episode each (fresh
  resets), so the budget is counted in whole episodes, as the repo counts it;
* ``make_train_workflow`` is the inner loop of the search: a ``lax.while_loop`` over updates that
  stops at batch compliance >= threshold (or a plateau, or ``max_updates``: a traced argument, so
  the last workflow's budget cap costs no recompilation), then a stochastic evaluation of
  ``eval_episodes`` episodes. Metrics go into fixed-size ``(cap_updates,)`` buffers. vmap it over
  (params, order, key) to train many workflows side by side (``search.sweep``).
* ``mode: universal``: ``make_universal_chunk`` trains one policy whose every env draws its
  workflow afresh per episode.

The repo's PPO quirks are config flags (spec §8.1, 8.13): ``advantage: mc_normalized`` (full-batch
normalised Monte-Carlo returns as value target, advantage ``R_norm - V`` recomputed every epoch,
no bootstrap), ``return_leak`` (returns run across episode boundaries), ``init: torch``
(U(+-1/sqrt(fan_in)) weights and biases), ``num_minibatches: 1``, Adam betas, ``max_grad_norm: 0``.
The network outputs logits and the loss uses log-softmax (the repo passes softmax as ``probs``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, cast

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from flax.linen.initializers import constant, orthogonal

from jaxcage.constants import NUM_BLUE_ACTIONS, OBS_SIZE
from jaxcage.ppo.gae import compute_gae
from jaxcage.ppo.loss import Minibatch, ppo_loss_terms
from jaxcage.ppo.networks import sample_action
from jaxcage.ppo.train import shuffled_indices
from jaxcage.workflows.config import WorkflowConfig
from jaxcage.workflows.orders import NUM_ORDERS, ONEHOT, ONEHOT_SIZE

NUM_ACTIONS = NUM_BLUE_ACTIONS
_ACTIVATIONS = {"tanh": nn.tanh, "relu": nn.relu}

# Per-update metrics (each a scalar per update); the first six are the training_log.csv columns.
UPDATE_METRICS = (
    "env_return",
    "alignment",
    "total_return",
    "compliance",
    "fixes",
    "episodes",
    "policy_loss",
    "value_loss",
    "entropy",
    "approx_kl",
)
EVAL_METRICS = ("env_return", "env_return_std", "compliance", "fixes", "total_return")


def input_size(cfg: WorkflowConfig) -> int:
    return OBS_SIZE + (ONEHOT_SIZE if cfg.workflow_input else 0)


# --------------------------------------------------------------------------------------------
# Network
# --------------------------------------------------------------------------------------------


class TorchDense(nn.Module):
    """``nn.Dense`` initialised like PyTorch's ``nn.Linear``: all U(+-1/sqrt(fan_in))."""

    features: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        fan_in = x.shape[-1]
        bound = 1.0 / np.sqrt(fan_in)

        def uniform(key: jax.Array, shape: tuple[int, ...], dtype: Any = jnp.float32) -> jax.Array:
            return jax.random.uniform(key, shape, dtype, -bound, bound)

        kernel = self.param("kernel", uniform, (fan_in, self.features))
        bias = self.param("bias", uniform, (self.features,))
        return x @ kernel + bias


class WorkflowActorCritic(nn.Module):
    """Separate actor and critic MLPs on the (obs + one-hot) input: ``(logits, value)``."""

    hidden_sizes: tuple[int, ...]
    activation: str = "tanh"
    init_scheme: str = "orthogonal"  # or "torch"
    num_actions: int = NUM_ACTIONS

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        return self._tower(x, "actor", self.num_actions, 0.01), self._tower(x, "critic", 1, 1.0)[
            ..., 0
        ]

    def _tower(self, x: jax.Array, name: str, out: int, gain: float) -> jax.Array:
        act = _ACTIVATIONS[self.activation]
        sizes = [*self.hidden_sizes, out]
        h = x
        for i, size in enumerate(sizes):
            last = i == len(sizes) - 1
            layer = f"{name}_out" if last else f"{name}_{i}"
            if self.init_scheme == "torch":
                h = TorchDense(size, name=layer)(h)
            else:
                g = gain if last else np.sqrt(2.0)
                h = nn.Dense(size, kernel_init=orthogonal(g), bias_init=constant(0.0), name=layer)(
                    h
                )
            if not last:
                h = act(h)
        return h


def make_network(cfg: WorkflowConfig) -> WorkflowActorCritic:
    return WorkflowActorCritic(
        hidden_sizes=tuple(cfg.hidden_sizes), activation=cfg.activation, init_scheme=cfg.init
    )


def make_apply(cfg: WorkflowConfig) -> Callable[[Any, jax.Array], tuple[jax.Array, jax.Array]]:
    """``apply(net_params, x) -> (logits, value)``."""
    net = make_network(cfg)
    return lambda params, x: cast(tuple[jax.Array, jax.Array], net.apply(params, x))


def make_init_params(cfg: WorkflowConfig) -> Callable[[jax.Array], Any]:
    """``init(key) -> network params`` (pure)."""
    net = make_network(cfg)
    return lambda key: net.init(key, jnp.zeros((1, input_size(cfg)), jnp.float32))


def make_optimizer(cfg: WorkflowConfig) -> optax.GradientTransformation:
    """Adam with the configured betas/eps (fresh per workflow, as the repo), after optional
    global-norm clipping (``max_grad_norm: 0`` disables it, as V2)."""
    adam = optax.adam(cfg.lr, b1=cfg.adam_b1, b2=cfg.adam_b2, eps=cfg.adam_eps)
    if cfg.max_grad_norm > 0:
        return optax.chain(optax.clip_by_global_norm(cfg.max_grad_norm), adam)
    return adam


# --------------------------------------------------------------------------------------------
# Environment and rollouts
# --------------------------------------------------------------------------------------------


def make_env(cfg: WorkflowConfig) -> tuple[Any, Any]:
    """``(WorkflowEnv, env params)`` for the config."""
    from jaxcage.env import make_params
    from jaxcage.workflows.env import WorkflowEnv

    env = WorkflowEnv(cfg.compliance_spec(), continuing_windows=cfg.continuing_windows)
    params = make_params(cfg.red_agent, max_steps=cfg.max_steps, green_agent=cfg.green_agent)
    return env, params


def policy_input(cfg: WorkflowConfig, obs: jax.Array, orders: jax.Array) -> jax.Array:
    """(N, 52 [+ 25]) float inputs: the observation, then the workflow one-hot."""
    x = obs.astype(jnp.float32)
    if cfg.workflow_input:
        x = jnp.concatenate([x, jnp.asarray(ONEHOT)[orders]], axis=-1)
    return x


@struct.dataclass
class Rollout:
    """One update's data, time-major (T = max_steps, N = episodes_per_update)."""

    inputs: jax.Array  # (T, N, D) float32
    actions: jax.Array  # (T, N) int32
    log_probs: jax.Array  # (T, N)
    values: jax.Array  # (T, N)
    rewards: jax.Array  # (T, N) training reward (env [+ alignment]), unscaled
    env_rewards: jax.Array  # (T, N)
    align_rewards: jax.Array  # (T, N)
    dones: jax.Array  # (T, N) bool
    compliance: jax.Array  # (T, N) episode compliance (valid where done)
    fixes: jax.Array  # (T, N) episode fix count (valid where done)
    last_value: jax.Array  # (N,) V(final observation of the last step)


def make_rollout(
    cfg: WorkflowConfig, env: Any, env_params: Any, *, deterministic: bool = False
) -> Callable[[jax.Array, Any, jax.Array], Rollout]:
    """``rollout(key, net_params, orders (N,)) -> Rollout``: N fresh episodes of ``max_steps``.

    The episodes start together at a reset and end together at the time limit, so one call is
    exactly N episodes (the env auto-resets after the last step; that reset is discarded).
    """
    reset = make_reset(env, env_params)
    window = make_window(cfg, env, env_params, deterministic=deterministic)

    def rollout(key: jax.Array, net_params: Any, orders: jax.Array) -> Rollout:
        key_reset, key_steps = jax.random.split(key)
        obs, wstate = reset(key_reset, orders)
        ro, _, _ = window(key_steps, net_params, orders, obs, wstate)
        return ro

    return rollout


def make_reset(env: Any, env_params: Any) -> Callable[[jax.Array, jax.Array], tuple[Any, Any]]:
    """``reset(key, orders (N,)) -> (obs (N, 52) int32, wstate)``: N fresh episodes."""

    def reset(key: jax.Array, orders: jax.Array) -> tuple[Any, Any]:
        obs, wstate = jax.vmap(env.reset, in_axes=(0, None, 0))(
            jax.random.split(key, orders.shape[0]), env_params, orders
        )
        return obs.astype(jnp.int32), wstate

    return reset


def make_window(
    cfg: WorkflowConfig, env: Any, env_params: Any, *, deterministic: bool = False
) -> Callable[[jax.Array, Any, jax.Array, jax.Array, Any], tuple[Rollout, jax.Array, Any]]:
    """``window(key, net_params, orders, obs, wstate) -> (Rollout, obs, wstate)``: ``max_steps``
    steps of N envs from ``(obs, wstate)``, returning where they stopped (a fresh episode after
    an auto-reset; with ``continuing_windows`` the same run, which the next window continues)."""
    apply = make_apply(cfg)
    steps = cfg.max_steps

    def window(
        key: jax.Array, net_params: Any, orders: jax.Array, obs: jax.Array, wstate: Any
    ) -> tuple[Rollout, jax.Array, Any]:
        n = orders.shape[0]

        def step(carry: tuple[Any, jax.Array, jax.Array], key: jax.Array) -> tuple[Any, Any]:
            wstate, obs, _ = carry
            key_act, key_env = jax.random.split(key)
            x = policy_input(cfg, obs, orders)
            logits, value = apply(net_params, x)
            if deterministic:
                action = jnp.argmax(logits, axis=-1).astype(jnp.int32)
            else:
                action = sample_action(key_act, logits)
            logp = jnp.take_along_axis(jax.nn.log_softmax(logits), action[:, None], -1)[:, 0]
            obs2, wstate, r_env, r_al, done, info = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
                jax.random.split(key_env, n), wstate, action, env_params
            )
            r_env = r_env.astype(jnp.float32)
            r_al = r_al.astype(jnp.float32)
            reward = r_env + r_al if cfg.alignment else r_env
            out = (
                x,
                action,
                logp,
                value,
                reward,
                r_env,
                r_al,
                done,
                info["compliance"].astype(jnp.float32),
                info["fixes"].astype(jnp.float32),
            )
            return (wstate, obs2.astype(jnp.int32), info["final_obs"].astype(jnp.int32)), out

        init = (wstate, obs, obs)
        (wstate, obs, final_obs), outs = jax.lax.scan(step, init, jax.random.split(key, steps))
        x, a, lp, v, r, re, ra, d, c, f = outs
        _, last_value = apply(net_params, policy_input(cfg, final_obs, orders))
        return Rollout(x, a, lp, v, r, re, ra, d, c, f, last_value), obs, wstate

    return window


def episode_stats(ro: Rollout) -> dict[str, jax.Array]:
    """Means over the episodes that ended in the rollout (every env's one episode)."""
    d = ro.dones.astype(jnp.float32)
    n = jnp.maximum(d.sum(), 1.0)
    num_envs = ro.rewards.shape[1]
    env_ret = ro.env_rewards.sum() / num_envs
    al = ro.align_rewards.sum() / num_envs
    return {
        "env_return": env_ret,
        "alignment": al,
        "total_return": env_ret + al,
        "compliance": (ro.compliance * d).sum() / n,
        "fixes": (ro.fixes * d).sum() / n,
        "episodes": d.sum(),
    }


def mc_returns(cfg: WorkflowConfig, rewards: jax.Array, dones: jax.Array) -> jax.Array:
    """Normalised discounted Monte-Carlo returns (the repo's value target), (T, N).

    Cut at episode ends without bootstrap; with ``return_leak`` the episodes are concatenated
    env by env and the return runs across their boundaries, as the repo's concatenated episode
    list does (spec §8.1b). Normalised over the whole batch with (sigma + ``return_norm_eps``):
    1e-5 as V2, 1e-8 as V0.
    """
    t, n = rewards.shape
    if cfg.return_leak:
        flat = rewards.T.reshape(-1)
        cut = jnp.zeros_like(flat, dtype=bool)
    else:
        flat = rewards.T.reshape(-1)
        cut = dones.T.reshape(-1)

    def back(g: jax.Array, x: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        r, c = x
        g = r + cfg.gamma * g * (1.0 - c.astype(r.dtype))
        return g, g

    _, g = jax.lax.scan(back, jnp.float32(0.0), (flat, cut), reverse=True)
    g = g.reshape(n, t).T
    return (g - g.mean()) / (g.std() + cfg.return_norm_eps)


# --------------------------------------------------------------------------------------------
# One PPO update
# --------------------------------------------------------------------------------------------


def make_learn(
    cfg: WorkflowConfig,
) -> Callable[[Any, Any, jax.Array, Rollout], tuple[Any, Any, dict[str, jax.Array]]]:
    """``learn(net_params, opt_state, key, rollout) -> (net_params, opt_state, metrics)``: the
    returns / advantages of one rollout and ``update_epochs`` epochs of minibatch steps."""
    apply = make_apply(cfg)
    tx = make_optimizer(cfg)
    mc = cfg.advantage == "mc_normalized"
    coefs = {
        "clip_eps": cfg.clip_eps,
        "vf_coef": cfg.vf_coef,
        "ent_coef": cfg.ent_coef,
        "clip_value_loss": cfg.clip_value_loss,
        "normalize_advantages": cfg.normalize_advantages,
    }
    batch, mbs = cfg.batch_size, cfg.num_minibatches

    def loss_fn(params: Any, mb: Minibatch) -> tuple[jax.Array, dict[str, jax.Array]]:
        logits, values = apply(params, cast(jax.Array, mb.inputs))
        if mc:
            # The repo's advantage: normalised return minus the *current* (detached) value.
            mb = dataclasses.replace(mb, advantages=mb.returns - jax.lax.stop_gradient(values))
        return ppo_loss_terms(logits, values, mb, **coefs)

    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

    def mb_step(carry: tuple[Any, Any], mb: Minibatch) -> tuple[tuple[Any, Any], Any]:
        params, opt = carry
        (_, aux), grads = grad_fn(params, mb)
        upd, opt = tx.update(grads, opt, params)
        return (optax.apply_updates(params, upd), opt), aux

    def learn(
        params: Any, opt: Any, key: jax.Array, ro: Rollout
    ) -> tuple[Any, Any, dict[str, jax.Array]]:
        scaled = ro.rewards * jnp.float32(cfg.reward_scale)
        if mc:
            returns = mc_returns(cfg, scaled, ro.dones)
            adv = returns - ro.values
        else:
            following = jnp.concatenate([ro.values[1:], ro.last_value[None]], axis=0)
            # Episodes end only by the time limit: bootstrap V(final obs) there (truncation).
            next_values = jnp.where(ro.dones, ro.last_value[None], following)
            adv, returns = compute_gae(
                scaled,
                ro.values,
                next_values,
                ro.dones,
                jnp.zeros_like(ro.dones),
                cfg.gamma,
                cfg.gae_lambda,
            )
        flat = Minibatch(
            inputs=ro.inputs.reshape(batch, -1),
            actions=ro.actions.reshape(batch),
            log_probs=ro.log_probs.reshape(batch),
            values=ro.values.reshape(batch),
            advantages=adv.reshape(batch),
            returns=returns.reshape(batch),
        )

        def epoch(carry: tuple[Any, Any], k: jax.Array) -> tuple[tuple[Any, Any], Any]:
            if mbs == 1:
                split = jax.tree.map(lambda x: x[None], flat)  # full batch, no shuffle (repo)
            else:
                perm = shuffled_indices(k, batch)
                split = jax.tree.map(
                    lambda x: x[perm].reshape(mbs, batch // mbs, *x.shape[1:]), flat
                )
            return jax.lax.scan(mb_step, carry, split)

        (params, opt), aux = jax.lax.scan(
            epoch, (params, opt), jax.random.split(key, cfg.update_epochs)
        )
        metrics = episode_stats(ro)
        for k in ("policy_loss", "value_loss", "entropy", "approx_kl"):
            metrics[k] = aux[k].mean()
        return params, opt, metrics

    return learn


def make_update(
    cfg: WorkflowConfig, env: Any, env_params: Any
) -> Callable[[Any, Any, jax.Array, jax.Array], tuple[Any, Any, dict[str, jax.Array]]]:
    """``update(net_params, opt_state, key, orders (N,)) -> (net_params, opt_state, metrics)``."""
    rollout = make_rollout(cfg, env, env_params)
    learn = make_learn(cfg)

    def update(
        params: Any, opt: Any, key: jax.Array, orders: jax.Array
    ) -> tuple[Any, Any, dict[str, jax.Array]]:
        key_roll, key_epochs = jax.random.split(key)
        return learn(params, opt, key_epochs, rollout(key_roll, params, orders))

    return update


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------


def make_evaluate(
    cfg: WorkflowConfig, env: Any, env_params: Any, episodes: int, *, deterministic: bool = False
) -> Callable[[Any, jax.Array, jax.Array], dict[str, jax.Array]]:
    """``evaluate(net_params, order_idx, key) -> stats``: ``episodes`` fresh episodes of the
    (stochastic by default) policy following ``order_idx``; env return without alignment."""
    rollout = make_rollout(cfg, env, env_params, deterministic=deterministic)

    def evaluate(net_params: Any, order_idx: jax.Array, key: jax.Array) -> dict[str, jax.Array]:
        ro = rollout(key, net_params, jnp.full((episodes,), order_idx, jnp.int32))
        env_ret = ro.env_rewards.sum(axis=0)
        s = episode_stats(ro)
        return {
            "env_return": env_ret.mean(),
            "env_return_std": env_ret.std(),
            "compliance": s["compliance"],
            "fixes": s["fixes"],
            "total_return": s["total_return"],
        }

    return evaluate


# --------------------------------------------------------------------------------------------
# The inner loop of the search: one workflow until threshold or cap, then evaluation
# --------------------------------------------------------------------------------------------


@struct.dataclass
class WorkflowRun:
    """What ``train_workflow`` returns (vmapped: a leading workflow axis on every leaf)."""

    params: Any
    updates: jax.Array  # () int32 updates done
    success: jax.Array  # () bool final batch compliance >= threshold
    metrics: dict[str, jax.Array]  # each (cap_updates,), NaN past ``updates``
    evaluation: dict[str, jax.Array]  # EVAL_METRICS scalars


class _Loop(struct.PyTreeNode):
    params: Any
    opt: Any
    key: jax.Array
    u: jax.Array  # training updates done
    e: jax.Array  # evaluation rollouts done
    training: jax.Array  # () bool: still in the training phase
    reached: jax.Array
    best: jax.Array
    since: jax.Array
    buf: dict[str, jax.Array]
    ev: dict[str, jax.Array]  # evaluation sums
    run: Any = None  # continuing_windows: (obs, wstate) where the workflow's training envs stand


def eval_rollouts(cfg: WorkflowConfig, eval_episodes: int) -> int:
    """Evaluation rollouts of ``episodes_per_update`` episodes that cover ``eval_episodes``."""
    return -(-eval_episodes // cfg.episodes_per_update)


def make_train_workflow(
    cfg: WorkflowConfig, env: Any, env_params: Any, cap_updates: int, eval_episodes: int
) -> Callable[[Any, jax.Array, jax.Array, jax.Array], WorkflowRun]:
    """``train_workflow(params, order_idx, key, max_updates) -> WorkflowRun`` (pure, jit/vmap).

    Fresh Adam state (the repo's), at most ``min(max_updates, cap_updates)`` updates, stopping
    after the first update whose batch compliance reaches ``cfg.threshold`` (if ``early_stop``)
    or after ``patience_updates`` updates without a > 0.01 gain (if set); then the evaluation of
    the final policy: ``eval_rollouts(cfg, eval_episodes) * episodes_per_update`` fresh episodes.

    Training updates and evaluation rollouts are iterations of *one* ``lax.while_loop`` around
    *one* rollout call, so the environment step is compiled once (it dominates compile time);
    the learning step is skipped (``lax.cond``) in the evaluation phase.
    """
    rollout = make_rollout(cfg, env, env_params)
    reset = make_reset(env, env_params)
    window = make_window(cfg, env, env_params)
    learn = make_learn(cfg)
    tx = make_optimizer(cfg)
    n = cfg.episodes_per_update
    n_eval = eval_rollouts(cfg, eval_episodes)
    ev_keys = ("env_return", "env_return_sq", "compliance", "fixes", "alignment")

    def train_workflow(
        params: Any, order_idx: jax.Array, key: jax.Array, max_updates: jax.Array
    ) -> WorkflowRun:
        order_idx = jnp.asarray(order_idx, jnp.int32)
        orders = jnp.full((n,), order_idx, jnp.int32)
        limit = jnp.minimum(jnp.asarray(max_updates, jnp.int32), cap_updates)
        buf = {k: jnp.full((cap_updates,), jnp.nan, jnp.float32) for k in UPDATE_METRICS}
        run = None
        if cfg.continuing_windows:  # V0/V1: one run per env per workflow, reset only here
            key, key_start = jax.random.split(key)
            run = reset(key_start, orders)
        init = _Loop(
            params=params,
            opt=tx.init(params),
            key=key,
            u=jnp.int32(0),
            e=jnp.int32(0),
            training=limit > 0,
            reached=jnp.bool_(False),
            best=jnp.float32(-jnp.inf),
            since=jnp.int32(0),
            buf=buf,
            ev={k: jnp.float32(0.0) for k in ev_keys},
            run=run,
        )

        def cond(c: _Loop) -> jax.Array:
            return c.training | (c.e < n_eval)

        def train_step(c: _Loop, ro: Rollout, k: jax.Array) -> _Loop:
            p, opt, m = learn(c.params, c.opt, k, ro)
            buf = {name: c.buf[name].at[c.u].set(m[name].astype(jnp.float32)) for name in c.buf}
            comp = m["compliance"]
            reached = comp >= cfg.threshold
            improved = comp > c.best + 0.01
            since = jnp.where(improved, 0, c.since + 1)
            stop = c.u + 1 >= limit
            if cfg.early_stop:
                stop = stop | reached
            if cfg.patience_updates > 0:
                stop = stop | (since >= cfg.patience_updates)
            return c.replace(
                params=p,
                opt=opt,
                u=c.u + 1,
                training=~stop,
                reached=reached,
                best=jnp.where(improved, comp, c.best),
                since=since,
                buf=buf,
            )

        def eval_step(c: _Loop, ro: Rollout, k: jax.Array) -> _Loop:
            del k
            ret = ro.env_rewards.sum(axis=0)
            s = episode_stats(ro)
            add = {
                "env_return": ret.sum(),
                "env_return_sq": jnp.square(ret).sum(),
                "compliance": s["compliance"] * n,
                "fixes": s["fixes"] * n,
                "alignment": s["alignment"] * n,
            }
            return c.replace(e=c.e + 1, ev={k: c.ev[k] + add[k] for k in ev_keys})

        def body(c: _Loop) -> _Loop:
            key, k_roll, k_learn = jax.random.split(c.key, 3)
            if cfg.continuing_windows:
                # training continues the workflow's runs; evaluation episodes start fresh
                k_reset, k_window = jax.random.split(k_roll)
                fresh = reset(k_reset, orders)
                start = jax.tree.map(lambda a, b: jnp.where(c.training, a, b), c.run, fresh)
                ro, obs, wstate = window(k_window, c.params, orders, *start)
                c = c.replace(run=(obs, wstate))
            else:
                ro = rollout(k_roll, c.params, orders)
            c = jax.lax.cond(c.training, train_step, eval_step, c, ro, k_learn)
            return c.replace(key=key)

        final = jax.lax.while_loop(cond, body, init)
        total = jnp.float32(n_eval * n)
        mean = final.ev["env_return"] / total
        var = jnp.maximum(final.ev["env_return_sq"] / total - mean * mean, 0.0)
        ev = {
            "env_return": mean,
            "env_return_std": jnp.sqrt(var),
            "compliance": final.ev["compliance"] / total,
            "fixes": final.ev["fixes"] / total,
            "total_return": mean + final.ev["alignment"] / total,
        }
        return WorkflowRun(
            params=final.params,
            updates=final.u,
            success=final.reached,
            metrics=final.buf,
            evaluation=ev,
        )

    return train_workflow


# --------------------------------------------------------------------------------------------
# Universal mode: one policy for all 120 workflows
# --------------------------------------------------------------------------------------------


def make_universal_chunk(
    cfg: WorkflowConfig, env: Any, env_params: Any, num_updates: int
) -> Callable[[Any, Any, jax.Array], tuple[Any, Any, jax.Array, dict[str, jax.Array]]]:
    """``chunk(params, opt, key) -> (params, opt, key, metrics (num_updates,))``: updates in which
    every env draws its workflow uniformly from the 120 at its episode's reset."""
    update = make_update(cfg, env, env_params)
    n = cfg.episodes_per_update

    def chunk(params: Any, opt: Any, key: jax.Array) -> tuple[Any, Any, jax.Array, Any]:
        def one(carry: tuple[Any, Any, jax.Array], _: None) -> tuple[Any, Any]:
            p, o, k = carry
            k, k_orders, k_upd = jax.random.split(k, 3)
            orders = jax.random.randint(k_orders, (n,), 0, NUM_ORDERS, dtype=jnp.int32)
            p, o, m = update(p, o, k_upd, orders)
            return (p, o, k), m

        (params, opt, key), m = jax.lax.scan(one, (params, opt, key), None, length=num_updates)
        return params, opt, key, m

    return chunk
