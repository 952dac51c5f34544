"""A tiny CAGE-shaped environment for fast trainer tests (a "probe env", rejax style).

Same API as ``jaxcage.CageEnv`` (52-bit observation, 145 actions, auto-reset, ``info`` with
``final_obs`` / ``truncated`` / ``terminated`` / ``reward_tenths``, traced ``red_agent`` and
``max_steps`` params), but with a few lines of dynamics, so a trainer test compiles in seconds
and has a known good policy:

* red 0 ("b_line") walks User1 -> Enterprise1 -> Op_Server0, red 1 ("meander") picks a random
  host, red 2 ("sleep") does nothing; each step red's exploit/escalation succeeds with
  probability 1/2 and is shown as Exploit activity on the target;
* Remove(h) cleans a user-level host, Restore(h) cleans any host at a cost of 1;
* reward = -(0.1 per user host + 1 per root host + 9 more for root on Op_Server0), in tenths.

A defender that removes what it sees scores close to 0; a sleeping one about -100 per 100 steps.
It is *not* CAGE2: use it to test the trainer, never to judge a policy.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxcage.constants import NUM_BLUE_ACTIONS, NUM_HOSTS, OBS_SIZE, REMOVE_BASE, RESTORE_BASE, Host

NUM_ACTIONS = NUM_BLUE_ACTIONS
_REMOVE_BASE = REMOVE_BASE
_RESTORE_BASE = RESTORE_BASE
_OP_SERVER0 = int(Host.OP_SERVER0)
_PATH = np.array([9, 2, _OP_SERVER0], dtype=np.int32)  # User1, Enterprise1, Op_Server0


@struct.dataclass
class ProbeParams:
    red_agent: jax.Array = struct.field(default_factory=lambda: jnp.int32(0))
    green_agent: jax.Array = struct.field(default_factory=lambda: jnp.int32(0))
    max_steps: jax.Array = struct.field(default_factory=lambda: jnp.int32(100))


@struct.dataclass
class ProbeState:
    comp: jax.Array  # (13,) int32: 0 clean, 1 user, 2 root
    time: jax.Array  # () int32


@struct.dataclass
class _Space:
    n: int = struct.field(pytree_node=False, default=0)
    shape: tuple[int, ...] = struct.field(pytree_node=False, default=())


class ProbeEnv:
    """See module docstring."""

    def action_space(self, params: ProbeParams | None = None) -> _Space:
        return _Space(n=NUM_ACTIONS)

    def observation_space(self, params: ProbeParams | None = None) -> _Space:
        return _Space(shape=(OBS_SIZE,))

    def reset(self, key: jax.Array, params: ProbeParams) -> tuple[jax.Array, ProbeState]:
        del key, params
        state = ProbeState(comp=jnp.zeros(NUM_HOSTS, jnp.int32), time=jnp.int32(0))
        return jnp.zeros(OBS_SIZE, jnp.int32), state

    def step(
        self, key: jax.Array, state: ProbeState, action: jax.Array, params: ProbeParams
    ) -> tuple[jax.Array, ProbeState, jax.Array, jax.Array, dict[str, jax.Array]]:
        action = jnp.asarray(action, jnp.int32)
        hosts = jnp.arange(NUM_HOSTS)
        comp = state.comp
        # Blue acts first.
        removed = (hosts == action - _REMOVE_BASE) & (comp == 1)
        restored = hosts == action - _RESTORE_BASE
        comp = jnp.where(removed | restored, 0, comp)
        # Red.
        k_succ, k_host = jax.random.split(key)
        on_path = jnp.zeros(NUM_HOSTS, bool).at[_PATH].set(True)
        path_open = jnp.where(on_path, comp < 2, False)
        path_order = jnp.full(NUM_HOSTS, 99).at[_PATH].set(jnp.arange(3))
        bline_target = jnp.argmin(jnp.where(path_open, path_order, 99))
        meander_target = jax.random.randint(k_host, (), 0, NUM_HOSTS)
        target = jnp.where(params.red_agent == 0, bline_target, meander_target)
        acts = (params.red_agent != 2) & (comp[target] < 2) & jax.random.bernoulli(k_succ)
        hit = acts & (hosts == target)
        comp = jnp.where(hit, comp + 1, comp)
        # Reward in tenths (integers, like CybORG's rounded reward).
        tenths = -(
            jnp.sum(comp == 1)
            + 10 * jnp.sum(comp == 2)
            + 90 * (comp[_OP_SERVER0] == 2)
            + 10 * jnp.any(restored)
        ).astype(jnp.int32)
        activity = jnp.where(hit, 3, 0)  # Exploit = bits 11
        comp_bits = jnp.select([comp == 1, comp == 2], [1, 3], 0)  # User = 01, Privileged = 11
        obs = jnp.stack(
            [activity >> 1, activity & 1, comp_bits >> 1, comp_bits & 1], axis=-1
        ).reshape(-1)
        obs = obs.astype(jnp.int32)
        time = state.time + 1
        done = time >= params.max_steps
        next_state = ProbeState(comp=comp, time=time)
        reset_obs, reset_state = self.reset(key, params)
        state_out = jax.tree.map(lambda r, s: jnp.where(done, r, s), reset_state, next_state)
        info = {
            "final_obs": obs,
            "truncated": done,
            "terminated": jnp.zeros_like(done),
            "reward_tenths": tenths,
        }
        return jnp.where(done, reset_obs, obs), state_out, tenths / jnp.float32(10.0), done, info


def make_probe(red_agent: int = 0, max_steps: int = 100) -> tuple[ProbeEnv, ProbeParams]:
    """The probe env and its params (``red_agent``: 0 b_line-like, 1 random, 2 sleep)."""
    return ProbeEnv(), ProbeParams(
        red_agent=jnp.int32(red_agent), green_agent=jnp.int32(0), max_steps=jnp.int32(max_steps)
    )
