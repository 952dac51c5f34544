"""Experience collection: ``num_envs`` vmapped environments stepped ``num_steps`` times in a scan.

Per step the policy acts on ``compact_input(obs, memory)`` (the compact form of ``policy_input``,
so the network must have been made with the same ``features``); the environment auto-resets; the
value to bootstrap from is V(input(final_obs, memory after the action)), i.e. the value of the
pre-reset observation, which for a step that did not end an episode is simply V(s_{t+1}). When an
env's episode ends, its policy memory resets and, for opponent mixtures, it draws a new red agent.
Episode returns are accumulated unscaled so the metrics are CAGE2 scores.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from jaxcage.ppo.features import (
    PolicyInput,
    PolicyMemory,
    compact_input,
    init_memories,
    update_memory,
)
from jaxcage.ppo.networks import sample_action

# ``ActorCritic.apply``: (params, inputs) -> (logits, values).
ApplyFn = Callable[..., Any]


@struct.dataclass
class EnvBatch:
    """The vectorised environments and their per-env bookkeeping (leading axis = env)."""

    env_state: Any  # batched env state
    obs: jax.Array  # (N, 52) int32 current observation
    memory: PolicyMemory  # batched policy memory
    env_params: Any  # batched env params (each env's own red agent)
    episode_return: jax.Array  # (N,) float32 return of the running episode (unscaled)


@struct.dataclass
class Transition:
    """One step of every env (a scan stacks these to (T, N, ...))."""

    inputs: PolicyInput  # (N, ...) compact policy input
    actions: jax.Array  # (N,) int32
    log_probs: jax.Array  # (N,) float32
    values: jax.Array  # (N,) float32 V(s_t)
    rewards: jax.Array  # (N,) float32, scaled by cfg.reward_scale
    next_values: jax.Array  # (N,) float32 V(s_{t+1}) or V(final_obs)
    dones: jax.Array  # (N,) bool episode ended at this step
    terminals: jax.Array  # (N,) bool no bootstrap (true terminal, or truncation-as-terminal)
    episode_returns: jax.Array  # (N,) float32 return of the episode that ended (valid if done)
    red_agents: jax.Array  # (N,) int32 opponent of this step


def _select(mask: jax.Array, on_true: Any, on_false: Any) -> Any:
    """Per-env ``where`` over matching pytrees whose leaves have a leading env axis."""

    def sel(a: jax.Array, b: jax.Array) -> jax.Array:
        return jnp.where(mask.reshape(mask.shape + (1,) * (a.ndim - 1)), a, b)

    return jax.tree.map(sel, on_true, on_false)


def sample_red(key: jax.Array, red_ids: jax.Array, red_probs: jax.Array, n: int) -> jax.Array:
    """``n`` opponent ids drawn from the configured mixture."""
    idx = jax.random.choice(key, red_ids.shape[0], (n,), p=red_probs)
    return red_ids[idx].astype(jnp.int32)


def init_env_batch(
    key: jax.Array,
    env: Any,
    base_params: Any,
    num_envs: int,
    red_ids: jax.Array,
    red_probs: jax.Array,
) -> EnvBatch:
    """Reset ``num_envs`` environments, each with its own opponent drawn from the mixture."""
    key_red, key_reset = jax.random.split(key)
    reds = sample_red(key_red, red_ids, red_probs, num_envs)
    env_params = jax.vmap(lambda r: base_params.replace(red_agent=r))(reds)
    obs, env_state = jax.vmap(env.reset)(jax.random.split(key_reset, num_envs), env_params)
    return EnvBatch(
        env_state=env_state,
        obs=obs.astype(jnp.int32),
        memory=init_memories(num_envs),
        env_params=env_params,
        episode_return=jnp.zeros(num_envs, jnp.float32),
    )


def collect(
    key: jax.Array,
    env: Any,
    apply_fn: ApplyFn,
    net_params: Any,
    envs: EnvBatch,
    *,
    num_steps: int,
    features: Sequence[str],
    reward_scale: float,
    treat_truncation_as_terminal: bool,
    red_ids: jax.Array,
    red_probs: jax.Array,
) -> tuple[EnvBatch, Transition]:
    """Step every env ``num_steps`` times with the stochastic policy.

    Returns the env batch after the rollout and the time-major ``Transition`` (T, N, ...).
    """
    num_envs = envs.obs.shape[0]
    batch_input = jax.vmap(lambda o, m: compact_input(o, m, features))
    fresh_memory = init_memories(num_envs)

    def step(envs: EnvBatch, key: jax.Array) -> tuple[EnvBatch, Transition]:
        key_act, key_env, key_red = jax.random.split(key, 3)
        x = batch_input(envs.obs, envs.memory)
        logits, value = apply_fn(net_params, x)
        action = sample_action(key_act, logits)
        log_prob = jnp.take_along_axis(jax.nn.log_softmax(logits), action[:, None], -1)[:, 0]

        obs, env_state, reward, done, info = jax.vmap(env.step)(
            jax.random.split(key_env, num_envs), envs.env_state, action, envs.env_params
        )
        memory = jax.vmap(update_memory)(envs.memory, envs.obs, action)
        # Bootstrap value of an episode that ended here: V(final_obs), the pre-reset observation
        # (truncation). Where the episode goes on, V(s_{t+1}) is the next step's ``value`` and is
        # filled in after the scan, so the critic runs on final observations only on steps where
        # some episode ends (1 in max_steps when all envs run in step): ~4% of a default update.
        final_value = jax.lax.cond(
            done.any(),
            lambda: apply_fn(net_params, batch_input(info["final_obs"], memory))[1],
            lambda: jnp.zeros(num_envs, jnp.float32),
        )

        terminal = jnp.asarray(info["terminated"], bool)
        if treat_truncation_as_terminal:
            terminal = terminal | done
        episode_return = envs.episode_return + reward
        new_red = sample_red(key_red, red_ids, red_probs, num_envs)
        env_params = envs.env_params.replace(
            red_agent=jnp.where(done, new_red, envs.env_params.red_agent)
        )
        transition = Transition(
            inputs=x,
            actions=action,
            log_probs=log_prob,
            values=value,
            rewards=reward * jnp.float32(reward_scale),
            next_values=final_value,  # completed after the scan
            dones=done,
            terminals=terminal,
            episode_returns=episode_return,
            red_agents=envs.env_params.red_agent,
        )
        envs = EnvBatch(
            env_state=env_state,
            obs=obs.astype(jnp.int32),
            memory=_select(done, fresh_memory, memory),
            env_params=env_params,
            episode_return=jnp.where(done, 0.0, episode_return),
        )
        return envs, transition

    envs, traj = jax.lax.scan(step, envs, jax.random.split(key, num_steps))
    _, last_value = apply_fn(net_params, batch_input(envs.obs, envs.memory))
    following = jnp.concatenate([traj.values[1:], last_value[None]], axis=0)
    return envs, dataclasses.replace(
        traj, next_values=jnp.where(traj.dones, traj.next_values, following)
    )
