"""Shared helpers for the environment tests: hand-built states and a jitted transition."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxcage.constants import HOST_NAMES, NUM_HOSTS, Compromised
from jaxcage.dynamics.step import StepTrace, transition
from jaxcage.env import make_params
from jaxcage.noise import StepNoise, forced_noise
from jaxcage.state import EnvParams, EnvState, init_state

H = {name: i for i, name in enumerate(HOST_NAMES)}

transition_jit = jax.jit(transition)


def host_vector(values: dict[str, Any], dtype: Any = np.int32, fill: Any = 0) -> np.ndarray:
    """A (13,) array from ``{hostname: value}``."""
    out = np.full(NUM_HOSTS, fill, dtype=dtype)
    for name, value in values.items():
        out[H[name]] = value
    return out


def make_state(**fields: Any) -> EnvState:
    """``init_state()`` with fields replaced; host-indexed fields may be given as dicts."""
    state = init_state()
    updates = {}
    for name, value in fields.items():
        current = np.asarray(getattr(state, name))
        if isinstance(value, dict):
            base = current.copy()
            for host, v in value.items():
                base[H[host]] = v
            value = base
        updates[name] = jnp.asarray(value, dtype=current.dtype)
    return state.replace(**updates)


def red_at(host: str, *, priv: int = 0, removable: int = 0, hidden: int = 0, **fields: Any):
    """A state with the given Red sessions on ``host`` (User0 keeps its session 0)."""
    base = init_state()
    priv_vec = np.asarray(base.red_priv).copy()
    priv_vec[H[host]] += priv
    rem = np.zeros(NUM_HOSTS, np.int32)
    rem[H[host]] = removable
    hid = np.zeros(NUM_HOSTS, np.int32)
    hid[H[host]] = hidden
    return make_state(red_priv=priv_vec, red_user_removable=rem, red_user_hidden=hid, **fields)


def step(
    state: EnvState,
    action: int = 0,
    *,
    red: str = "sleep",
    green: str = "sleep",
    noise: StepNoise | None = None,
    params: EnvParams | None = None,
    **forced: Any,
) -> tuple[EnvState, np.ndarray, int, StepTrace]:
    """One deterministic step; returns numpy obs and the reward in tenths."""
    params = params if params is not None else make_params(red, green_agent=green)
    noise = noise if noise is not None else forced_noise(**forced)
    next_state, obs, reward, trace = transition_jit(state, jnp.int32(action), noise, params)
    return next_state, np.asarray(obs), int(reward), trace


def obs_rows(obs: np.ndarray) -> dict[str, tuple[int, int, int, int]]:
    """Observation as ``{hostname: (a0, a1, c0, c1)}`` for readable assertions."""
    rows = np.asarray(obs).reshape(NUM_HOSTS, 4)
    return {name: tuple(int(v) for v in rows[i]) for i, name in enumerate(HOST_NAMES)}


def compromised(state: EnvState) -> dict[str, str]:
    """The Compromised column by hostname, as names."""
    return {
        name: Compromised(int(v)).name
        for name, v in zip(HOST_NAMES, np.asarray(state.compromised), strict=True)
    }


def host_values(array: Any) -> dict[str, Any]:
    """A (13,...) array as ``{hostname: value}`` (numpy scalars/arrays)."""
    arr = np.asarray(array)
    return {name: arr[i] for i, name in enumerate(HOST_NAMES)}


def assert_samples_cover_cells(
    samples: Any, cells: Any, rules: str = "current", backend: str | None = None
) -> None:
    """A committed CybORG return-sample file (jaxcage/parity/generate.py) holds exactly ``cells``
    for ``rules``, each with its full episode count and step length, its returns the sums of its
    per-step rewards, every per-step reward in CybORG's range (at worst every valued host
    privileged, -4.8, OTService down, -10, and a Restore, -1; never positive), and, where
    ``backend`` is named, recorded by that CybORG backend."""
    from jaxcage.parity import generate as gen

    assert samples.rules == rules and samples.base_seed == gen.DEFAULT_BASE_SEED
    assert set(samples.rewards) == {c.key for c in cells}
    for cell in cells:
        rewards = samples.rewards[cell.key]
        assert rewards.dtype == np.int16
        assert rewards.shape == (gen.cell_episodes(cell, rules=rules), cell.length)
        np.testing.assert_array_equal(
            samples.returns[cell.key], rewards.astype(np.int32).sum(axis=1)
        )
        assert rewards.max() <= 0 and rewards.min() >= -158
    if backend is not None:
        assert any(f"backend={backend}" in v for v in samples.versions), samples.versions


def assert_no_mismatches(result: Any, rules: str | None = None, min_episodes: int = 0) -> None:
    """A lockstep or trace-replay result (anything with ``mismatches``, each with ``format()``)
    compared every episode alike; for a replay, also that it replayed ``min_episodes`` or more
    episodes recorded under ``rules``."""
    if rules is not None:
        assert result.recorded_rules == rules and result.episodes >= min_episodes
    report = "\n\n".join(m.format() for m in result.mismatches[:5])
    assert not result.mismatches, f"{len(result.mismatches)} mismatching episodes:\n{report}"


def recorded_trace_blocks(path: str, rules: str, backend: str | None = None) -> list[Any]:
    """The blocks (jaxcage.parity.traces.RecordedBlock) of a committed trace file, which must
    exist and have been recorded under ``rules`` (by ``backend``, where named)."""
    import os

    import pytest

    from jaxcage.parity import traces

    if not os.path.exists(path):
        pytest.fail(f"committed {rules} traces missing: {path}")
    data = dict(np.load(path))
    assert str(data["meta/rules"]) == rules
    if backend is not None:
        assert str(data["meta/backend"]) == backend
    return traces.recorded_blocks(data)


def assert_return_parity(rewards: Any, rules: str, reference: str, capsys: Any) -> None:
    """The acceptance rule of tests/test_parity_stats.py for one rule set's recorded CybORG
    samples: nothing DIFFERENT, no per-step curve differing, equivalence wherever TOST has the
    power (jaxcage: 2,000 episodes per cell); and the samples discriminate: today's rules on
    react_restore/b_line/30 are shown DIFFERENT from ``reference``."""
    from jaxcage.parity import generate as gen
    from jaxcage.parity import stats

    results = stats.run_stats(rewards, episodes=2000, rules=rules)
    cell = gen.Cell("react_restore", "b_line", 30)
    against_current = stats.run_stats(rewards, [cell], episodes=2000, rules="current")
    with capsys.disabled():
        print(f"\n{rules} rules vs {reference}\n" + stats.TABLE_HEADER)
        for r in results:
            print(stats.format_row(r))
        print(f"current rules vs {reference}")
        for r in against_current:
            print(stats.format_row(r))
    bad = [stats.format_row(r) for r in results if not r.consistent]
    assert not bad, "\n".join(bad)
    assert [r.tost.verdict for r in against_current] == ["DIFFERENT"]
