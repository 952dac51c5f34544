"""Workflow compliance and the alignment reward, computed inside the compiled step.

Mirrors the compliance code of the workflow-search project (spec ``../shared/workflows/SPEC.md``
§2-3): the state rule of ``workflow_rl/executor_async_train_workflow_rl.py:120-199`` (V2) and the
sequence rule of ``parallel_order_conditioned_ppo.py:177-220`` (V0/V1), with the per-episode
counters and the "per-step distributed" alignment reward ``lambda * (c_t - c_{t-1})``.

Only Remove (15-27) and Restore (132-144) are fix actions; a fix is judged per host *type*, and its
success is never checked (faithful). Options (spec §8.3-8.6):

* ``rule``: ``"state"`` (default): a fix on type T is compliant iff no type is compromised, or T is
  the highest-priority compromised type h*. The state is read *before* Blue acts, i.e. after the
  previous step's Blue, Green and Red actions, so Red's step t-1 counts and the current fix does
  not. ``"sequence"``: compliant iff every type ranked above T was already targeted by a fix this
  episode (the env state is ignored).
* ``compromise``: ``"excluding_user0_foothold"`` (default) ignores Red's undeletable starting
  session 0 on User0; ``"any_red_session"`` (faithful) counts it, so ``user`` is always compromised
  and a fix on a type ranked below ``user`` is never compliant.
* ``target``: ``"type"`` (faithful) or ``"host"``: additionally, the fixed host itself must be
  compromised (under ``compromise``) for the fix to be compliant, with either rule. The neutral case
  (nothing compromised under the state rule) stays compliant.

The rule code reads Red's sessions through ``jaxcage.true_state.RedSessionView``, so the same code
judges jaxcage's state and CybORG's ``get_agent_state('True')`` (``cyborg_eval.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
from flax import struct

from jaxcage.state import EnvState
from jaxcage.true_state import RedSessionView, red_session_view
from jaxcage.workflows.orders import FIX_HOST, FIX_TYPE, NUM_TYPES, TYPE_HOSTS

RULES: tuple[str, ...] = ("state", "sequence")
COMPROMISE_MODES: tuple[str, ...] = ("excluding_user0_foothold", "any_red_session")
TARGETS: tuple[str, ...] = ("type", "host")


@dataclass(frozen=True)
class ComplianceSpec:
    """Static compliance configuration (hashable; every field fixes the compiled program)."""

    rule: str = "state"
    compromise: str = "excluding_user0_foothold"
    target: str = "type"
    lam: float = 30.0  # the alignment weight: an episode's alignment rewards sum to lam * c
    nofix_value: float = 0.5  # compliance of an episode without a fix (the greedy baseline: 1.0)
    # alignment penalty nofix_penalty * lam at the end of an episode without a fix (spec §3:
    # V2 -0.2 lam, V0 -0.5 lam, dead there because `done` never fires; 0 = off, as it ran)
    nofix_penalty: float = 0.0

    def validate(self) -> ComplianceSpec:
        """Raise ``ValueError`` on a bad field; returns ``self`` for chaining."""
        for name, value, allowed in (
            ("rule", self.rule, RULES),
            ("compromise", self.compromise, COMPROMISE_MODES),
            ("target", self.target, TARGETS),
        ):
            if value not in allowed:
                raise ValueError(f"unknown compliance {name} {value!r}; expected one of {allowed}")
        for name, value in (
            ("lam", self.lam),
            ("nofix_value", self.nofix_value),
            ("nofix_penalty", self.nofix_penalty),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"compliance {name} must be a number, got {value!r}")
        if not self.lam >= 0.0:
            raise ValueError(f"compliance lam must be >= 0, got {self.lam!r}")
        if not 0.0 <= self.nofix_value <= 1.0:
            raise ValueError(f"compliance nofix_value must be in [0, 1], got {self.nofix_value!r}")
        if not self.nofix_penalty >= 0.0:
            raise ValueError(f"compliance nofix_penalty must be >= 0, got {self.nofix_penalty!r}")
        return self


class ComplianceState(struct.PyTreeNode):
    """Per-episode compliance counters."""

    total: jax.Array  # () int32: fix actions this episode
    compliant: jax.Array  # () int32: compliant fix actions this episode
    targeted: jax.Array  # (5,) bool: types a fix action targeted this episode (sequence rule)


def init_compliance() -> ComplianceState:
    """Counters at the start of an episode."""
    return ComplianceState(
        total=jnp.int32(0), compliant=jnp.int32(0), targeted=jnp.zeros(NUM_TYPES, dtype=bool)
    )


def compromised_from_sessions(sessions: RedSessionView, compromise: str) -> jax.Array:
    """(13,) bool: hosts that count as compromised under ``compromise``."""
    if compromise == "any_red_session":
        return sessions.any
    if compromise == "excluding_user0_foothold":
        return sessions.beyond_foothold
    raise ValueError(f"unknown compromise {compromise!r}; expected one of {COMPROMISE_MODES}")


def compromised_hosts(env_state: EnvState, compromise: str) -> jax.Array:
    """(13,) bool: hosts of ``env_state`` that count as compromised under ``compromise``."""
    return compromised_from_sessions(red_session_view(env_state), compromise)


def compromised_types(hosts: jax.Array) -> jax.Array:
    """(5,) bool: host types with at least one compromised host."""
    return jnp.any(jnp.asarray(TYPE_HOSTS) & hosts[None, :], axis=1)


def top_compromised_type(hosts: jax.Array, order_types: jax.Array) -> jax.Array:
    """() int32: h*, the highest-priority compromised type of the order, -1 if none."""
    by_priority = compromised_types(hosts)[order_types]  # (5,) in priority order
    first = jnp.argmax(by_priority)
    return jnp.where(jnp.any(by_priority), order_types[first], -1).astype(jnp.int32)


def running_compliance(cstate: ComplianceState) -> jax.Array:
    """() float32: compliance so far this episode, 0 before the first fix (the S_t / lambda)."""
    return jnp.where(cstate.total > 0, cstate.compliant / jnp.maximum(cstate.total, 1), 0.0).astype(
        jnp.float32
    )


def episode_compliance(spec: ComplianceSpec, cstate: ComplianceState) -> jax.Array:
    """() float32: the episode's compliance, ``spec.nofix_value`` if it had no fix."""
    return jnp.where(cstate.total > 0, running_compliance(cstate), spec.nofix_value).astype(
        jnp.float32
    )


def compliance_step_sessions(
    spec: ComplianceSpec,
    cstate: ComplianceState,
    sessions_before_blue: RedSessionView,
    action: jax.Array | int,
    order_types: jax.Array,
) -> tuple[ComplianceState, jax.Array, jax.Array, jax.Array]:
    """``compliance_step`` on a ``RedSessionView`` (the code path CybORG's true state uses too)."""
    action = jnp.asarray(action, dtype=jnp.int32)
    order_types = jnp.asarray(order_types, dtype=jnp.int32)
    in_range = (action >= 0) & (action < FIX_TYPE.shape[0])
    safe = jnp.clip(action, 0, FIX_TYPE.shape[0] - 1)
    fix_type = jnp.where(in_range, jnp.asarray(FIX_TYPE)[safe], -1)
    fix_host = jnp.asarray(FIX_HOST)[safe]
    is_fix = fix_type >= 0
    hosts = compromised_from_sessions(sessions_before_blue, spec.compromise)

    if spec.rule == "state":
        h_star = top_compromised_type(hosts, order_types)
        ok = (h_star < 0) | (fix_type == h_star)
        neutral = h_star < 0
    elif spec.rule == "sequence":
        position = jnp.argsort(order_types)  # (5,) priority position of each type
        above = position < position[jnp.maximum(fix_type, 0)]
        ok = jnp.all(cstate.targeted | ~above)
        neutral = jnp.bool_(False)
    else:
        raise ValueError(f"unknown compliance rule {spec.rule!r}; expected one of {RULES}")
    if spec.target == "host":
        ok = ok & (neutral | hosts[jnp.maximum(fix_host, 0)])
    elif spec.target != "type":
        raise ValueError(f"unknown compliance target {spec.target!r}; expected one of {TARGETS}")

    is_compliant = is_fix & ok
    new = ComplianceState(
        total=cstate.total + is_fix.astype(jnp.int32),
        compliant=cstate.compliant + is_compliant.astype(jnp.int32),
        targeted=cstate.targeted | (is_fix & (jnp.arange(NUM_TYPES) == fix_type)),
    )
    align = (spec.lam * (running_compliance(new) - running_compliance(cstate))).astype(jnp.float32)
    return new, align, is_fix, is_compliant


def compliance_step(
    spec: ComplianceSpec,
    cstate: ComplianceState,
    env_state_before_blue: EnvState,
    action: jax.Array | int,
    order_types: jax.Array,
) -> tuple[ComplianceState, jax.Array, jax.Array, jax.Array]:
    """Judge Blue's ``action`` against the workflow and update the episode counters.

    Args:
        spec: the (static) rule configuration.
        cstate: counters of the episode so far.
        env_state_before_blue: the state Blue acts on (after the previous step's Blue, Green, Red).
        action: Blue's action id (0..144).
        order_types: (5,) int32 type index at each priority position (``orders.ORDERS[i]``).

    Returns:
        ``(new_cstate, alignment_reward, is_fix, is_compliant)``; the reward is
        ``lam * (c_t - c_{t-1})`` with ``c`` the running compliance (0 before the first fix), so an
        episode's rewards sum to ``lam * c_final``.
    """
    sessions = red_session_view(env_state_before_blue)
    return compliance_step_sessions(spec, cstate, sessions, action, order_types)
