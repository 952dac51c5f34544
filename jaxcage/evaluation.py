"""The official CAGE2 evaluation table for a trained defender, in jaxcage or inside CybORG.

CAGE2's ``evaluation.py`` (spec §9) scores a blue agent against B_line, Meander and Sleep red
agents for 30, 50 and 100 steps: the mean and standard deviation of the episode return per cell
and, as the overall score, the sum of the 9 means (winner: -54.57; B_line-100: -13.76).

* ``engine="jax"``: all ``9 x episodes`` episodes run as one vmapped, jitted ``lax.scan`` over
  jaxcage, the episodes split over this process's devices (``jaxcage.sharding``; independent
  work, so no communication and the same returns on any number of devices).
* ``engine="cyborg"``: the same policy acts as a blue agent inside CybORG through
  ``jaxcage.reference.make_cyborg_env`` (needs the ``cyborg`` extra). The policy input is built by
  the same ``jaxcage.ppo.features`` functions as in training, fed CybORG's numpy observations, and
  the policy itself is one jitted numpy-in/numpy-out call per step.

Green is the evaluation's SleepAgent in both engines. ``rules`` (``jaxcage.rules``) picks the game:
``"current"`` (today's CybORG), ``"leaderboard"`` (CybORG at 606813b, on which the CAGE2 table
below was scored) or ``"debugged"`` (CybORG++'s Debugged_CybORG); inside CybORG it must be the
CybORG that implements them (``jaxcage.reference.versions``).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import numpy as np

from jaxcage import sharding as shd
from jaxcage.env import make as make_cage_env
from jaxcage.host_step import HostPolicy
from jaxcage.ppo import checkpoint as ckpt
from jaxcage.ppo.config import RED_AGENTS, PPOConfig
from jaxcage.ppo.features import (
    PolicyMemory,
    init_memories,
    init_memory,
    policy_input,
    update_memory,
)
from jaxcage.ppo.networks import sample_action
from jaxcage.ppo.train import TrainResult, make_init, make_network_for, seed_keys
from jaxcage.reference.cyborg_env import make_cyborg_env
from jaxcage.reference.versions import cyborg_backend_for_rules
from jaxcage.rules import get_rule_set, rules_name
from jaxcage.state import EnvParams, EnvState

EVAL_REDS: tuple[str, ...] = ("b_line", "meander", "sleep")
EVAL_STEPS: tuple[int, ...] = (30, 50, 100)
ENGINES: tuple[str, ...] = ("jax", "cyborg")
_RED_LABELS = {"b_line": "B_line", "meander": "Meander", "sleep": "Sleep"}
# The CAGE2 winner (Cardiff, hierarchical PPO; 1,000 episodes per cell) for reference.
CAGE2_WINNER = {
    ("b_line", 30): -3.47,
    ("b_line", 50): -6.41,
    ("b_line", 100): -13.76,
    ("meander", 30): -5.64,
    ("meander", 50): -8.69,
    ("meander", 100): -16.6,
    ("sleep", 30): 0.0,
    ("sleep", 50): 0.0,
    ("sleep", 100): 0.0,
}


@dataclasses.dataclass
class EvalTable:
    """CAGE2 table as data: ``cells[(red, steps)] = {"mean", "std", "n"}``."""

    cells: dict[tuple[str, int], dict[str, float]]
    engine: str
    deterministic: bool
    episodes: int
    seed: int = 0
    note: str = ""
    rules: str = "current"  # jaxcage.rules rule set (the CybORG version) the table was scored on

    @property
    def total(self) -> float:
        """Overall CAGE2 score: the sum of the cell means."""
        return float(sum(c["mean"] for c in self.cells.values()))

    def to_dict(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "rules": self.rules,
            "rules_cyborg": get_rule_set(self.rules).cyborg,
            "deterministic": self.deterministic,
            "episodes": self.episodes,
            "seed": self.seed,
            "note": self.note,
            "total": self.total,
            "cells": {f"{r}/{s}": dict(v) for (r, s), v in self.cells.items()},
        }

    def save_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    def __str__(self) -> str:
        policy = "deterministic (argmax)" if self.deterministic else "stochastic (sampled)"
        reds = [r for r in EVAL_REDS if any(k[0] == r for k in self.cells)]
        steps = sorted({k[1] for k in self.cells})
        head = f"{'red agent':<10}" + "".join(f"{f'{s} steps':>22}" for s in steps)
        lines = [
            f"CAGE2 evaluation: engine={self.engine}, rules={self.rules} "
            f"({get_rule_set(self.rules).cyborg}), {policy} policy, "
            f"{self.episodes} episodes per cell, green=sleep"
            + (f" ({self.note})" if self.note else ""),
            head,
            "-" * len(head),
        ]
        for r in reds:
            row = f"{_RED_LABELS[r]:<10}"
            for s in steps:
                c = self.cells.get((r, s))
                row += f"{c['mean']:>12.2f} ± {c['std']:>7.2f}" if c else f"{'':>22}"
            lines.append(row)
        lines.append("-" * len(head))
        lines.append(f"Total (sum of the {len(self.cells)} means): {self.total:.2f}")
        if len(self.cells) == 9:
            lines.append(
                f"CAGE2 winner for comparison: {sum(CAGE2_WINNER.values()):.2f} "
                f"(B_line-100 {CAGE2_WINNER[('b_line', 100)]}; scored on the leaderboard rules)"
            )
        return "\n".join(lines)


# --- policy -----------------------------------------------------------------------------------

PolicyFn = Callable[[Any, jax.Array, PolicyMemory, jax.Array], jax.Array]


def make_policy(cfg: PPOConfig, deterministic: bool = True) -> PolicyFn:
    """``policy(params, obs, memory, key) -> action`` for one (unbatched) observation."""
    network = make_network_for(cfg)

    def policy(params: Any, obs: jax.Array, memory: PolicyMemory, key: jax.Array) -> jax.Array:
        logits, _ = network.apply(params, policy_input(obs, memory, cfg.features))
        if deterministic:
            return jnp.argmax(logits, axis=-1).astype(jnp.int32)
        return sample_action(key, logits)

    return policy


class PolicyShape(Protocol):
    """What a defender's compiled policy depends on besides its params: hashable, so evaluation
    programs are cached by it (a second evaluation of the same network shape does not recompile)."""

    def build(self, deterministic: bool) -> PolicyFn: ...


@dataclasses.dataclass(frozen=True)
class NetworkShape:
    """One PPO network's policy: its layer sizes, activation and policy features."""

    hidden_sizes: tuple[int, ...]
    activation: str
    features: tuple[str, ...]

    @classmethod
    def of(cls, cfg: PPOConfig) -> NetworkShape:
        return cls(tuple(cfg.hidden_sizes), cfg.activation, tuple(cfg.features))

    def build(self, deterministic: bool) -> PolicyFn:
        cfg = PPOConfig(
            hidden_sizes=self.hidden_sizes, activation=self.activation, features=self.features
        )
        return make_policy(cfg, deterministic)


class Defender(Protocol):
    """A loaded defender that is not a single network's params: an exported agent
    (``jaxcage.export``) or a composite (``jaxcage.switch``)."""

    @property
    def rules(self) -> str: ...

    def policy_spec(self) -> tuple[Any, PolicyShape]: ...


def _resolve(
    subject: Any, cfg: PPOConfig | None, seed_index: int | None
) -> tuple[Any, PolicyShape, str, str]:
    """``(params, shape, rules trained under, note)`` of a TrainResult, a run directory, a loaded
    defender (``Defender``) or raw single-seed params (then ``cfg``)."""
    note = ""
    if isinstance(subject, (str, Path)):
        subject = load_run(subject)
    if hasattr(subject, "policy_spec"):
        if seed_index is not None:
            raise ValueError("seed_index applies to training runs, not to an exported agent")
        params, shape = subject.policy_spec()
        return params, shape, subject.rules, note
    if isinstance(subject, TrainResult):
        cfg = subject.config
        params = subject.params
        num_seeds = cfg.num_seeds
        if seed_index is None:
            seed_index = subject.best_seed() if num_seeds > 1 else 0
            if num_seeds > 1:
                note = f"seed {seed_index} of {num_seeds}, best final training return"
        elif num_seeds > 1:
            note = f"seed {seed_index} of {num_seeds}"
        if not 0 <= seed_index < num_seeds:
            raise ValueError(f"seed_index {seed_index} out of range for {num_seeds} seeds")
        params = jax.tree.map(lambda x: x[seed_index], params)
        return params, NetworkShape.of(cfg), cfg.rules, note
    if cfg is None:
        raise ValueError("evaluate(params) needs cfg= (the network and features to use)")
    params = subject
    if seed_index is not None:
        params = jax.tree.map(lambda x: x[seed_index], params)
    return params, NetworkShape.of(cfg), cfg.rules, note


def load_run(run_dir: str | Path) -> TrainResult:
    """A ``TrainResult`` (params and metrics history) from a run directory's checkpoint."""
    path = Path(run_dir) / ckpt.CHECKPOINT_NAME
    cfg = ckpt.load_config(path)
    # Rebuild the template from the saved config (cheap: shapes only, nothing runs).
    template = jax.eval_shape(jax.vmap(make_init(cfg)), seed_keys(cfg))
    saved = ckpt.load(path, template)
    return TrainResult(
        config=cfg,
        params=saved.runner.train_state.params,
        metrics=saved.metrics,
        wall_time=saved.wall_time,
        compile_time=0.0,
        env_steps=saved.update * cfg.batch_size * cfg.num_seeds,
        out_dir=Path(run_dir),
    )


# --- engines ----------------------------------------------------------------------------------


# record(state, action, params) -> a pytree of per-step values, ``state`` the one the step's
# reward is computed on (after Red, before any auto-reset).
RecordFn = Callable[[EnvState, jax.Array, EnvParams], Any]


@functools.lru_cache(maxsize=8)
def _eval_program(
    shape: PolicyShape,
    deterministic: bool,
    horizon: int,
    n: int,
    mesh: Any,
    rules: str = "current",
    record: RecordFn | None = None,
) -> Callable[..., Any]:
    """The jitted evaluation scan for ``n`` episodes of at most ``horizon`` steps (cached: it only
    depends on the policy's shape, the policy mode, the batch and ``record``, not on the params).
    It returns the episode returns, and with ``record`` also its values, each leaf
    ``(n, horizon, ...)``."""
    env, base = make_cage_env("b_line", max_steps=horizon, green_agent="sleep", rules=rules)
    policy = jax.vmap(shape.build(deterministic), in_axes=(None, 0, 0, 0))
    episodes = shd.leading(mesh) if n % mesh.size == 0 else shd.replicated(mesh)

    @functools.partial(jax.jit, out_shardings=episodes)
    def run(params: Any, key: jax.Array, red_ids: jax.Array, lengths: jax.Array) -> Any:
        env_params = jax.vmap(lambda r, m: base.replace(red_agent=r, max_steps=m))(red_ids, lengths)
        key, key_reset = jax.random.split(key)
        obs, state = jax.vmap(env.reset)(jax.random.split(key_reset, n), env_params)
        memory = init_memories(n)

        def step(carry: Any, xs: tuple[jax.Array, jax.Array]) -> tuple[Any, Any]:
            obs, state, memory, total = carry
            t, key = xs
            key_pol, key_env = jax.random.split(key)
            action = policy(params, obs, memory, jax.random.split(key_pol, n))
            env_keys = jax.random.split(key_env, n)
            obs2, state, reward, done, _ = jax.vmap(env.step_env)(
                env_keys, state, action, env_params
            )
            values = None if record is None else jax.vmap(record)(state, action, env_params)
            obs2, state = jax.vmap(env.auto_reset)(env_keys, done, obs2, state, env_params)
            memory = jax.vmap(update_memory)(memory, obs, action)
            # Each episode runs exactly `length` steps; later steps (a new auto-reset episode)
            # don't count.
            total = total + jnp.where(t < lengths, reward, 0.0)
            return (obs2, state, memory, total), values

        init = (obs, state, memory, jnp.zeros(n, jnp.float32))
        xs = (jnp.arange(horizon), jax.random.split(key, horizon))
        (_, _, _, total), values = jax.lax.scan(step, init, xs)
        if record is None:
            return total
        return total, jax.tree.map(lambda v: jnp.swapaxes(v, 0, 1), values)

    return run


def _run_jax(
    params: Any,
    shape: PolicyShape,
    red_ids: np.ndarray,
    lengths: np.ndarray,
    deterministic: bool,
    seed: int,
    rules: str,
    record: RecordFn | None = None,
) -> tuple[np.ndarray, Any]:
    """``(returns, values)`` of one episode per ``(red_ids[i], lengths[i])``, in one vmapped scan
    of ``max(lengths)`` steps over this process's devices (``values``: None without ``record``)."""
    n, mesh = len(red_ids), shd.make_mesh(local=True)
    run = _eval_program(shape, deterministic, int(lengths.max()), n, mesh, rules, record)
    episodes_on = shd.leading(mesh) if n % mesh.size == 0 else shd.replicated(mesh)
    args = shd.put((params, jax.random.key(seed)), shd.replicated(mesh))
    out = jax.device_get(run(*args, *shd.put((red_ids, lengths), episodes_on)))
    totals, values = (out, None) if record is None else out
    # Sums of tenths: round away float32 accumulation noise (CybORG sums exact 0.1 multiples).
    return np.round(np.asarray(totals, np.float64), 1), values


def _eval_jax(
    params: Any,
    shape: PolicyShape,
    reds: Sequence[str],
    steps: Sequence[int],
    episodes: int,
    deterministic: bool,
    seed: int,
    rules: str = "current",
) -> dict[tuple[str, int], np.ndarray]:
    """Episode returns per cell, all cells in one vmapped scan of ``max(steps)`` steps."""
    cells = [(r, s) for r in reds for s in steps]
    red_ids = np.repeat([RED_AGENTS.index(r) for r, _ in cells], episodes).astype(np.int32)
    lengths = np.repeat([s for _, s in cells], episodes).astype(np.int32)
    totals, _ = _run_jax(params, shape, red_ids, lengths, deterministic, seed, rules)
    return {c: totals[i * episodes : (i + 1) * episodes] for i, c in enumerate(cells)}


def check_count(name: str, value: Any) -> None:
    """Raise ValueError unless ``value`` is a positive int (bools are not counts)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def rollout(
    subject: Any,
    record: RecordFn,
    red: str = "b_line",
    steps: int = 100,
    episodes: int = 1000,
    seed: int = 0,
    deterministic: bool = True,
    *,
    cfg: PPOConfig | None = None,
    seed_index: int | None = None,
    rules: str | None = None,
) -> tuple[np.ndarray, Any, str]:
    """``(returns, values, rules)`` of a defender in jaxcage on one cell (``red``, ``steps``),
    by ``evaluate(engine="jax")``'s program run on that cell alone (so with other random draws
    than the cell gets in the full table): ``returns`` (episodes,), and each leaf of ``values``
    (episodes, steps, ...) the per-step ``record(state, action, env_params)`` (pass a
    module-level function: the compiled program is cached on it)."""
    if red not in EVAL_REDS:
        raise ValueError(f"unknown red agent {red!r}; expected one of {list(EVAL_REDS)}")
    check_count("steps", steps)
    check_count("episodes", episodes)
    params, shape, trained_rules, _ = _resolve(subject, cfg, seed_index)
    rules = rules_name(trained_rules if rules is None else rules)
    red_ids = np.full(episodes, RED_AGENTS.index(red), np.int32)
    lengths = np.full(episodes, steps, np.int32)
    totals, values = _run_jax(params, shape, red_ids, lengths, deterministic, seed, rules, record)
    return totals, values, rules


def make_host_policy(
    params: Any, shape: PPOConfig | PolicyShape, deterministic: bool, key: jax.Array
) -> HostPolicy:
    """The trained policy as a ``HostPolicy``: NumPy obs in, int action out, its memory and key
    kept in one packed device buffer (``policy.reset()`` at each episode start)."""
    if isinstance(shape, PPOConfig):
        shape = NetworkShape.of(shape)
    policy = shape.build(deterministic)

    def act(obs: jax.Array, memory: PolicyMemory, sub: jax.Array) -> tuple[jax.Array, Any]:
        action = policy(params, obs, memory, sub)
        return action, update_memory(memory, obs, action)

    return HostPolicy(act, init_memory(), key)


def _eval_cyborg(
    params: Any,
    shape: PolicyShape,
    reds: Sequence[str],
    steps: Sequence[int],
    episodes: int,
    deterministic: bool,
    seed: int,
    progress: bool,
    rules: str = "current",
) -> dict[tuple[str, int], np.ndarray]:
    backend = cyborg_backend_for_rules(rules)
    # One key stream over all cells and episodes, split once per step inside the policy call.
    policy = make_host_policy(params, shape, deterministic, jax.random.key(seed))
    out: dict[tuple[str, int], np.ndarray] = {}
    for ci, (r, s) in enumerate((r, s) for s in steps for r in reds):
        # As evaluation.py: one env per cell, Python's `random` seeded once, episodes in sequence.
        env = make_cyborg_env(
            red=r, green="sleep", max_steps=s, seed=seed * 1000 + ci, backend=backend
        )
        totals = np.zeros(episodes)
        for ep in range(episodes):
            obs = env.reset()
            policy.reset()
            total = 0.0
            for _ in range(s):
                obs, reward, _, _ = env.step(policy.act(obs))
                total += reward
            totals[ep] = round(total, 1)
        out[(r, s)] = totals
        if progress:
            print(f"  cyborg {r}-{s}: {totals.mean():.2f} ± {totals.std(ddof=1):.2f}", flush=True)
    return out


def evaluate(
    result_or_params: Any,
    engine: str = "jax",
    episodes: int = 100,
    deterministic: bool = True,
    seed: int = 0,
    *,
    cfg: PPOConfig | None = None,
    seed_index: int | None = None,
    reds: Sequence[str] = EVAL_REDS,
    steps: Sequence[int] = EVAL_STEPS,
    progress: bool = False,
    rules: str | None = None,
) -> EvalTable:
    """Score a trained defender on the CAGE2 table.

    Args:
        result_or_params: a ``TrainResult``, a run directory, a loaded agent
            (``jaxcage.export.load_agent``: an exported or a switch defender), or network params
            (then ``cfg``).
        engine: ``"jax"`` (jaxcage) or ``"cyborg"`` (CybORG itself; needs the ``cyborg`` extra).
        episodes: episodes per cell (the CAGE2 evaluation used 100; the final leaderboard 1,000).
        deterministic: argmax actions (True) or sampled ones.
        seed: evaluation seed.
        cfg: the config the params were trained with (only for raw params).
        seed_index: which seed of a multi-seed result; default: the one with the best training
            return at the end of training (chosen from training metrics only).
        reds, steps: a subset of the table (tests); defaults are the full 3 x 3 table.
        progress: print each CybORG cell as it finishes.
        rules: ``"current"``, ``"leaderboard"`` or ``"debugged"`` (``jaxcage.rules``); default:
            the rules the config was trained on. With ``engine="cyborg"`` the importable CybORG
            must implement them: ``"leaderboard"`` needs the official ``CybORG`` package at
            commit 606813b, ``"debugged"`` CybORG++'s (``$JAXCAGE_DEBUGGED_CYBORG``).

    Raises:
        ValueError: unknown engine / red agent / rules, or bad episodes.
        jaxcage.reference.ReferenceNotInstalled: engine="cyborg" without a CybORG installed that
            implements ``rules`` (the message says what to install).
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; expected one of {list(ENGINES)}")
    check_count("episodes", episodes)
    for r in reds:
        if r not in EVAL_REDS:
            raise ValueError(f"unknown red agent {r!r}; expected any of {list(EVAL_REDS)}")
    params, shape, trained_rules, note = _resolve(result_or_params, cfg, seed_index)
    rules = rules_name(trained_rules if rules is None else rules)
    if engine == "jax":
        returns = _eval_jax(params, shape, reds, steps, episodes, deterministic, seed, rules)
    else:
        returns = _eval_cyborg(
            params, shape, reds, steps, episodes, deterministic, seed, progress, rules
        )
    cells = {
        (r, s): {
            "mean": float(returns[(r, s)].mean()),
            # Sample standard deviation, as CAGE2's evaluation.py (statistics.stdev).
            "std": float(returns[(r, s)].std(ddof=1)) if episodes > 1 else math.nan,
            "n": episodes,
        }
        for r in reds
        for s in steps
    }
    return EvalTable(
        cells=cells,
        engine=engine,
        deterministic=deterministic,
        episodes=episodes,
        seed=seed,
        note=note,
        rules=rules,
    )
