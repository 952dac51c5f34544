"""Scripted workflow baselines as pure JAX policies, and a jitted evaluator for any such policy.

Mirrors ``baselines/random_policy.py``, ``baselines/greedy_heuristic.py`` and
``baselines/fixed_priority_workflows.py`` of the workflow-search project (spec
``../shared/workflows/SPEC.md`` §5 "Baselines", §8.15):

* ``random_policy``: uniform over the 145 actions;
* ``greedy_exact``: the repo's greedy heuristic. Each step, h* = the highest-priority type with any
  Red session (Red's User0 foothold included, as the repo reads the true state), then Restore a
  uniformly random host of type h*, compromised or not; Sleep if nothing is compromised (never
  happens: the foothold keeps ``user`` compromised), so it Restores every step;
* ``greedy_host``: the corrected variant. h* ignores the foothold, only compromised hosts of h* are
  restored, and it Sleeps when nothing is compromised;
* the 6 canonical fixed orders (``CANONICAL_ORDERS``): ``greedy_exact`` on a fixed order.

A policy is ``policy(key, obs52, sessions, order_idx) -> action``: ``sessions`` is Red's sessions
per host before Blue acts (``jaxcage.true_state.RedSessionView``; scripted baselines read it as the
repo reads ``get_agent_state('True')``, learned policies ignore it), ``order_idx`` the workflow.
The same function runs in jaxcage and, through ``cyborg_eval``, inside CybORG.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxcage.constants import NUM_BLUE_ACTIONS, NUM_HOSTS, RESTORE_BASE
from jaxcage.env import make_params
from jaxcage.true_state import RedSessionView, red_session_view
from jaxcage.workflows.compliance import ComplianceSpec, top_compromised_type
from jaxcage.workflows.env import WorkflowEnv, order_types
from jaxcage.workflows.orders import CANONICAL_ORDERS, NUM_ORDERS, TYPE_HOSTS, order_index

PolicyFn = Callable[[jax.Array, jax.Array, RedSessionView, jax.Array], jax.Array]
SLEEP = 0


def _restore_random(key: jax.Array, candidates: jax.Array) -> jax.Array:
    """Restore a uniformly random host among ``candidates`` (13,) bool; Sleep if there is none."""
    score = jnp.where(candidates, jax.random.uniform(key, (NUM_HOSTS,)), -1.0)
    host = jnp.argmax(score)
    return jnp.where(jnp.any(candidates), RESTORE_BASE + host, SLEEP).astype(jnp.int32)


def random_policy(
    key: jax.Array, obs: jax.Array, sessions: RedSessionView, order_idx: jax.Array
) -> jax.Array:
    """Uniform over the 145 blue actions (``baselines/random_policy.py``)."""
    del obs, sessions, order_idx
    return jax.random.randint(key, (), 0, NUM_BLUE_ACTIONS, dtype=jnp.int32)


def greedy_exact(
    key: jax.Array, obs: jax.Array, sessions: RedSessionView, order_idx: jax.Array
) -> jax.Array:
    """The repo's greedy heuristic: Restore a random host of h* (any Red session counts)."""
    del obs
    h_star = top_compromised_type(sessions.any, order_types(order_idx))
    of_type = jnp.asarray(TYPE_HOSTS)[jnp.maximum(h_star, 0)] & (h_star >= 0)
    return _restore_random(key, of_type)


def greedy_host(
    key: jax.Array, obs: jax.Array, sessions: RedSessionView, order_idx: jax.Array
) -> jax.Array:
    """Host-level greedy: Restore a random compromised host of h*, foothold ignored; else Sleep."""
    del obs
    hosts = sessions.beyond_foothold
    h_star = top_compromised_type(hosts, order_types(order_idx))
    of_type = jnp.asarray(TYPE_HOSTS)[jnp.maximum(h_star, 0)] & (h_star >= 0)
    return _restore_random(key, of_type & hosts)


def _with_fixed_order(policy: PolicyFn, fixed: int) -> PolicyFn:
    def fixed_policy(
        key: jax.Array, obs: jax.Array, sessions: RedSessionView, order_idx: jax.Array
    ) -> jax.Array:
        del order_idx
        return policy(key, obs, sessions, jnp.int32(fixed))

    return fixed_policy


# name -> (order index, policy that follows that order whatever workflow the env is given).
FIXED_ORDER_POLICIES: dict[str, tuple[int, PolicyFn]] = {
    name: (order_index(letters), _with_fixed_order(greedy_exact, order_index(letters)))
    for name, letters in CANONICAL_ORDERS.items()
}

POLICIES: dict[str, PolicyFn] = {
    "random": random_policy,
    "greedy_exact": greedy_exact,
    "greedy_host": greedy_host,
}


def get_policy(name: str) -> PolicyFn:
    """A baseline by name (``POLICIES`` or a ``CANONICAL_ORDERS`` name); ``ValueError`` else."""
    if name in POLICIES:
        return POLICIES[name]
    if name in FIXED_ORDER_POLICIES:
        return FIXED_ORDER_POLICIES[name][1]
    raise ValueError(
        f"unknown workflow baseline {name!r}; expected one of "
        f"{list(POLICIES) + list(FIXED_ORDER_POLICIES)}"
    )


@functools.lru_cache(maxsize=64)
def _eval_program(
    policy: PolicyFn, spec: ComplianceSpec, max_steps: int
) -> Callable[..., dict[str, jax.Array]]:
    env = WorkflowEnv(spec)

    def episode(key: jax.Array, order_idx: jax.Array, params: object) -> dict[str, jax.Array]:
        key_reset, key_run = jax.random.split(key)
        obs, wstate = env.reset(key_reset, params, order_idx)  # type: ignore[arg-type]

        def body(carry, key_t):  # noqa: ANN001, ANN202 - scan body
            obs, wstate, env_ret, align_ret = carry
            key_pi, key_env = jax.random.split(key_t)
            action = policy(key_pi, obs, red_session_view(wstate.env_state), wstate.order_idx)
            obs, wstate, r, ar, done, info = env.step(key_env, wstate, action, params)  # type: ignore[arg-type]
            return (obs, wstate, env_ret + r, align_ret + ar), (done, info)

        init = (obs, wstate, jnp.float32(0.0), jnp.float32(0.0))
        (_, _, env_ret, align_ret), (done, info) = jax.lax.scan(
            body, init, jax.random.split(key_run, max_steps)
        )
        fixes = info["fixes"][-1]
        return {
            "env_return": env_ret,
            "align_return": align_ret,
            "compliance": info["compliance"][-1],
            # greedy_heuristic.py logs 1.0 for an episode without fixes
            "compliance_repo": jnp.where(fixes > 0, info["compliance"][-1], 1.0),
            "fixes": fixes,
            "compliant_fixes": info["compliant_fixes"][-1],
            "done": done[-1],
        }

    return jax.jit(jax.vmap(episode, in_axes=(0, 0, None)))


def evaluate_policy(
    policy: PolicyFn | str,
    order_idx: int | np.ndarray | None = None,
    *,
    episodes: int,
    seed: int = 0,
    red: str = "b_line",
    green: str = "sleep",
    spec: ComplianceSpec | None = None,
    max_steps: int = 100,
) -> dict[str, np.ndarray]:
    """Run ``episodes`` independent episodes of ``policy`` in jaxcage (one compiled program).

    Args:
        policy: a ``PolicyFn`` or a baseline name (see ``get_policy``). A canonical fixed-order
            name runs ``greedy_exact`` on that order (one compiled program for all six).
        order_idx: the workflow of every episode (int), or one per episode ((episodes,) ints);
            for a fixed-order name it defaults to (and must equal) that order.
        episodes: number of episodes.
        seed: base seed (``jax.random.key(seed)``).
        red, green, max_steps: the opponent, green agent and episode length.
        spec: the compliance rule (default ``ComplianceSpec()``).

    Returns:
        per-episode numpy arrays: ``env_return``, ``align_return`` (= lam * compliance when there
        were fixes), ``compliance`` (``spec.nofix_value`` without fixes), ``compliance_repo``
        (1.0 without fixes, as the greedy baseline logs), ``fixes``, ``compliant_fixes``.
    """
    if isinstance(policy, str) and policy in FIXED_ORDER_POLICIES:
        fixed = FIXED_ORDER_POLICIES[policy][0]
        if order_idx is not None and np.any(np.asarray(order_idx) != fixed):
            raise ValueError(
                f"baseline {policy!r} follows order {fixed}, got order_idx {order_idx}"
            )
        policy, order_idx = greedy_exact, fixed
    elif isinstance(policy, str):
        policy = get_policy(policy)
    if order_idx is None:
        raise ValueError("order_idx is required (the workflow the episodes are judged against)")
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise ValueError(f"episodes must be a positive integer, got {episodes!r}")
    orders = np.broadcast_to(np.asarray(order_idx, dtype=np.int64), (episodes,))
    if orders.min() < 0 or orders.max() >= NUM_ORDERS:
        raise ValueError(f"order_idx must be in 0..{NUM_ORDERS - 1}, got {order_idx!r}")
    spec = (spec or ComplianceSpec()).validate()
    params = make_params(red, max_steps=max_steps, green_agent=green)
    program = _eval_program(policy, spec, int(max_steps))
    keys = jax.random.split(jax.random.key(seed), episodes)
    out = jax.device_get(program(keys, jnp.asarray(orders, dtype=jnp.int32), params))
    out = {k: np.asarray(v) for k, v in out.items()}
    if not out.pop("done").all():
        raise RuntimeError("an evaluated episode did not end after max_steps steps")
    return out
