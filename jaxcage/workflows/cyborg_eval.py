"""Workflow policies evaluated inside CybORG, with compliance read from CybORG's true state.

Mirrors the workflow-search project's evaluation loop (spec ``../shared/workflows/SPEC.md`` §2:
``cyborg.get_agent_state('True')`` before each Blue action, ``executor_async_train_workflow_rl.py``
:120-199), on the reference env of ``jaxcage.reference`` (csle-cyborg or the official CybORG 2.1).

CybORG's true state is turned into the same ``RedSessionView`` jaxcage computes from ``EnvState``
(``sessions_from_true_state``), and from there the one rule implementation of ``compliance.py``
(``compliance_step_sessions``) and the one policy code path (``baselines.PolicyFn``) are used, so a
difference between the engines cannot hide in a second copy of the rule.

``lockstep_sessions`` additionally steps jaxcage in lockstep (CybORG's realised random outcomes
forced into ``transition``, as ``jaxcage.parity.lockstep`` does) and checks after every step that
the per-host Red sessions and the compliance counters are equal in both engines.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxcage.constants import HOST_NAMES, NUM_HOSTS
from jaxcage.dynamics.step import transition
from jaxcage.env import make_params
from jaxcage.noise import forced_noise
from jaxcage.reference import extract
from jaxcage.reference.cyborg_env import CyborgEnv, make_cyborg_env
from jaxcage.state import init_state
from jaxcage.true_state import RedSessionView, red_session_view
from jaxcage.workflows.baselines import PolicyFn, get_policy
from jaxcage.workflows.compliance import (
    ComplianceSpec,
    ComplianceState,
    compliance_step,
    compliance_step_sessions,
    episode_compliance,
    init_compliance,
)
from jaxcage.workflows.env import order_types
from jaxcage.workflows.orders import NUM_ORDERS

PRIVILEGED_USERS = frozenset({"root", "SYSTEM"})
DEFAULT_SEED = 31_337
_HOST_INDEX = {name: i for i, name in enumerate(HOST_NAMES)}


def sessions_from_true_state(true_state: Mapping[str, Any]) -> RedSessionView:
    """Red's sessions per host from a ``get_agent_state('True')`` dict.

    A session is Red's when ``Agent == 'Red'``; privileged when its ``Username`` is root/SYSTEM
    (what Impact, PrivilegeEscalate and the reward test); Red's foothold is its session ``ID`` 0.
    """
    count = np.zeros(NUM_HOSTS, dtype=np.int32)
    privileged = np.zeros(NUM_HOSTS, dtype=bool)
    foothold = np.zeros(NUM_HOSTS, dtype=bool)
    for name, host in _HOST_INDEX.items():
        for sess in true_state.get(name, {}).get("Sessions", ()):
            if sess.get("Agent") != "Red":
                continue
            count[host] += 1
            privileged[host] |= sess.get("Username") in PRIVILEGED_USERS
            foothold[host] |= sess.get("ID") == 0
    return RedSessionView(
        count=jnp.asarray(count), privileged=jnp.asarray(privileged), foothold=jnp.asarray(foothold)
    )


def cyborg_sessions(env: CyborgEnv) -> RedSessionView:
    """Red's sessions per host in a running CybORG, read through ``get_agent_state('True')``."""
    return sessions_from_true_state(env.cyborg.get_agent_state("True"))


@dataclass
class _Programs:
    """The jitted policy and rule steps shared by every CybORG episode of one evaluation."""

    policy: Callable[..., jax.Array]
    rule: Callable[..., tuple[ComplianceState, jax.Array, jax.Array, jax.Array]]
    rule_jax: Callable[..., tuple[ComplianceState, jax.Array, jax.Array, jax.Array]]
    final: Callable[[ComplianceState], jax.Array]
    transition: Callable[..., Any]


def _programs(policy: PolicyFn, spec: ComplianceSpec) -> _Programs:
    return _Programs(
        policy=jax.jit(policy),
        rule=jax.jit(lambda c, s, a, o: compliance_step_sessions(spec, c, s, a, o)),
        rule_jax=jax.jit(lambda c, s, a, o: compliance_step(spec, c, s, a, o)),
        final=jax.jit(lambda c: episode_compliance(spec, c)),
        transition=jax.jit(transition),
    )


def _resolve(
    policy: PolicyFn | str, order_idx: int, spec: ComplianceSpec | None
) -> tuple[PolicyFn, int, ComplianceSpec]:
    if isinstance(policy, str):
        policy = get_policy(policy)
    if isinstance(order_idx, bool) or not 0 <= int(order_idx) < NUM_ORDERS:
        raise ValueError(f"order_idx must be in 0..{NUM_ORDERS - 1}, got {order_idx!r}")
    return policy, int(order_idx), (spec or ComplianceSpec()).validate()


def _session_diffs(cy: RedSessionView, jx: RedSessionView) -> list[str]:
    out = []
    for name in ("count", "privileged", "foothold"):
        a, b = np.asarray(getattr(cy, name)), np.asarray(getattr(jx, name))
        if not np.array_equal(a.astype(np.int64), b.astype(np.int64)):
            out.append(f"{name}: cyborg={a.astype(int).tolist()} jaxcage={b.astype(int).tolist()}")
    return out


def run_cyborg_episode(
    env: CyborgEnv,
    programs: _Programs,
    order_idx: int,
    seed: int,
    key: jax.Array,
    max_steps: int,
    lockstep: bool = False,
) -> dict[str, Any]:
    """One CybORG episode of a workflow policy; with ``lockstep``, jaxcage is checked alongside.

    Returns the episode's totals and, with ``lockstep``, ``mismatches`` (human-readable lines, the
    first step with a difference ends the comparison) and ``steps_compared``.
    """
    order = order_types(jnp.int32(order_idx))
    order_arr = jnp.int32(order_idx)
    obs = env.reset(seed=seed)
    cstate = init_compliance()
    env_ret = align_ret = 0.0
    mismatches: list[str] = []
    steps_compared = 0
    if lockstep:
        index = extract.episode_index(env)
        params = make_params(env.red, max_steps=max_steps, green_agent=env.green)
        jstate = init_state()
        jcstate = init_compliance()
    for t in range(max_steps):
        sessions = cyborg_sessions(env)  # before Blue acts
        if lockstep and not mismatches:
            diffs = _session_diffs(sessions, jax.device_get(red_session_view(jstate)))
            if diffs:
                mismatches.append(f"seed {seed} before step {t + 1}: " + "; ".join(diffs))
            else:
                steps_compared += 1
        action = int(programs.policy(jax.random.fold_in(key, t), obs, sessions, order_arr))
        cstate, align, _, _ = programs.rule(cstate, sessions, action, order)
        if lockstep and not mismatches:
            pre = extract.snapshot(env, index)
            jcstate, _, _, _ = programs.rule_jax(jcstate, jstate, action, order)
        obs, reward, _, _ = env.step(action)
        env_ret += reward
        align_ret += float(align)
        if lockstep and not mismatches:
            outcome = extract.read_outcome(env, pre)
            noise = forced_noise(**outcome.noise_kwargs())
            jstate, _, _, _ = programs.transition(jstate, action, noise, params)
            ours = (int(cstate.total), int(cstate.compliant))
            theirs = (int(jcstate.total), int(jcstate.compliant))
            if ours != theirs:
                mismatches.append(
                    f"seed {seed} step {t + 1}: compliance counters (total, compliant) "
                    f"cyborg={ours} jaxcage={theirs}"
                )
    fixes = int(cstate.total)
    comp = float(programs.final(cstate))
    out: dict[str, Any] = {
        "env_return": env_ret,
        "align_return": align_ret,
        "compliance": comp,
        "compliance_repo": comp if fixes > 0 else 1.0,
        "fixes": fixes,
        "compliant_fixes": int(cstate.compliant),
    }
    if lockstep:
        if not mismatches:
            diffs = _session_diffs(cyborg_sessions(env), jax.device_get(red_session_view(jstate)))
            if diffs:
                mismatches.append(f"seed {seed} after step {max_steps}: " + "; ".join(diffs))
            else:
                steps_compared += 1
        out["mismatches"] = mismatches
        out["steps_compared"] = steps_compared
    return out


@dataclass
class CyborgEvalResult:
    """Per-episode arrays of a CybORG evaluation (the keys of ``baselines.evaluate_policy``)."""

    episodes: dict[str, np.ndarray]
    mismatches: list[str] = field(default_factory=list)  # lockstep only
    steps_compared: int = 0  # lockstep only


def evaluate_in_cyborg(
    policy: PolicyFn | str,
    order_idx: int,
    *,
    episodes: int,
    seed: int = DEFAULT_SEED,
    red: str = "b_line",
    green: str = "sleep",
    spec: ComplianceSpec | None = None,
    max_steps: int = 100,
    backend: str = "auto",
    lockstep: bool = False,
    env: CyborgEnv | None = None,
) -> CyborgEvalResult:
    """Run ``episodes`` CybORG episodes of ``policy`` on workflow ``order_idx``.

    Episode i seeds CybORG's ``random`` with ``seed + i`` and draws the policy's keys from
    ``fold_in(key(seed), i)``. With ``lockstep`` jaxcage runs alongside under CybORG's realised
    outcomes and every step's Red sessions and compliance counters are compared.

    Raises:
        ReferenceNotInstalled: CybORG is not importable.
    """
    policy, order_idx, spec = _resolve(policy, order_idx, spec)
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise ValueError(f"episodes must be a positive integer, got {episodes!r}")
    env = env or make_cyborg_env(red, green, max_steps=max_steps, backend=backend)
    programs = _programs(policy, spec)
    rows = []
    result = CyborgEvalResult(episodes={})
    base = jax.random.key(seed)
    for i in range(episodes):
        row = run_cyborg_episode(
            env, programs, order_idx, seed + i, jax.random.fold_in(base, i), max_steps, lockstep
        )
        result.mismatches.extend(row.pop("mismatches", []))
        result.steps_compared += row.pop("steps_compared", 0)
        rows.append(row)
    result.episodes = {k: np.asarray([r[k] for r in rows]) for k in rows[0]}
    return result
