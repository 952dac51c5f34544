"""Recorded CybORG traces: the lockstep comparison without CybORG, for CI.

The lockstep harness (``jaxcage.parity.lockstep``) needs a running CybORG. CI cannot fetch the
official CybORG at the leaderboard commit, so this module records everything the comparison
reads from CybORG, once, into an npz file (``record``), and replays it through jaxcage's
``transition`` (``replay``): per step the Blue action, the realised outcome of every random draw
(``jaxcage.reference.extract.StepOutcome``, turned into a ``StepNoise`` exactly as the lockstep
does), the 52-dim observation, the reward, Red's action / target / success / exploit, Green's scan
target, and every ``EnvState`` quantity extracted from CybORG's objects (after reset and after
every step). The replay is one jitted program (vmap over episodes, ``lax.scan`` over steps).

Record (needs the CybORG whose rules are recorded, e.g. the official one at 606813b)::

    python -m jaxcage.parity.traces record --rules leaderboard --backend official \\
        --out tests/data/cyborg_traces_leaderboard.npz

CybORG++'s ``Debugged_CybORG`` (rules ``debugged``; ``$JAXCAGE_DEBUGGED_CYBORG``, see
``jaxcage.reference.cyborg_env``)::

    python -m jaxcage.parity.traces record --rules debugged --backend debugged

Replay (no CybORG)::

    python -m jaxcage.parity.traces replay tests/data/cyborg_traces_leaderboard.npz \\
        [--rules current]

Ablate: replay under the recorded rule set with each of its flags switched off in turn, to show
every flag is needed to reproduce the recording::

    python -m jaxcage.parity.traces ablate tests/data/cyborg_traces_debugged.npz
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxcage import rules as rules_mod
from jaxcage.constants import NUM_EXPLOITS, NUM_HOSTS
from jaxcage.dynamics.step import transition
from jaxcage.env import make_params
from jaxcage.noise import FORCED_KEY, StepNoise
from jaxcage.parity.lockstep import DEFAULT_SEED
from jaxcage.parity.policies import LOCKSTEP_POLICIES, get_policy
from jaxcage.reference import extract
from jaxcage.reference.cyborg_env import BACKENDS, load_backend, make_cyborg_env
from jaxcage.reference.versions import cyborg_rules
from jaxcage.rules import Flag, get_rule_set, rules_id, rules_name
from jaxcage.state import EnvState, init_state

FORMAT_VERSION = 1
# Episode i of a (red, green) block uses random.seed(TRACE_SEED + offset + i); distinct from the
# lockstep runs' seeds so the traces are not replays of episodes checked there.
TRACE_SEED = DEFAULT_SEED + 5_000_000
DATA_PATH = "tests/data/cyborg_traces_leaderboard.npz"
# Recorded traces per rule set (the default output of ``record --rules``).
DATA_PATHS: dict[str, str] = {
    "leaderboard": DATA_PATH,
    "debugged": "tests/data/cyborg_traces_debugged.npz",
}
# The per-step outcome fields of StepOutcome that the replay needs (-1 = "no draw" / None).
_OUTCOME_FIELDS = (
    "red_action_type",
    "red_target",
    "red_success",
    "exploit",
    "green_scan",
    "green_host",
    "red_draw_target",
    "exploit_drawn",
    "exploit_top",
    "exploit_other",
    "detected",
    "privesc_removable",
)
# State fields of red agents not in play (jaxcage keeps their reset values; see lockstep).
_SKIP = {
    "b_line": extract.MEANDER_FIELDS,
    "meander": extract.BLINE_FIELDS,
    "sleep": extract.BLINE_FIELDS + extract.MEANDER_FIELDS,
}


def _opt(value: Any) -> int:
    """None -> -1, bool/int -> int."""
    return -1 if value is None else int(value)


@dataclass(frozen=True)
class Block:
    """Episodes of one (red, green) pair."""

    red: str
    green: str
    episodes: int
    seed: int


DEFAULT_BLOCKS: tuple[Block, ...] = (
    Block("b_line", "sleep", 30, TRACE_SEED),
    Block("meander", "sleep", 30, TRACE_SEED + 1000),
    Block("b_line", "random", 10, TRACE_SEED + 2000),
    Block("meander", "random", 10, TRACE_SEED + 3000),
)


def record_episode(
    env: Any, policy_name: str, seed: int, max_steps: int
) -> tuple[dict[str, np.ndarray], dict[str, list[np.ndarray]]]:
    """One CybORG episode: per-step arrays, and the extracted states (reset + every step)."""
    policy = get_policy(policy_name)
    rng = np.random.default_rng(seed)
    obs = env.reset(seed=seed)
    index = extract.episode_index(env)
    states: dict[str, list[np.ndarray]] = {}

    def keep(state: dict[str, np.ndarray]) -> None:
        for k, v in state.items():
            states.setdefault(k, []).append(np.asarray(v))

    keep(extract.extract_state(env, index))
    steps: dict[str, list[Any]] = {k: [] for k in ("action", "obs", "reward", *_OUTCOME_FIELDS)}
    for _ in range(max_steps):
        action = policy.act_numpy(obs, rng)
        pre = extract.snapshot(env, index)
        obs, reward, _, _ = env.step(action)
        outcome = extract.read_outcome(env, pre)
        keep(extract.extract_state(env, index))
        steps["action"].append(action)
        steps["obs"].append(obs)
        steps["reward"].append(round(reward * 10))
        for name in _OUTCOME_FIELDS:
            steps[name].append(_opt(getattr(outcome, name)))
    out = {k: np.asarray(v) for k, v in steps.items()}
    return out, states


def record(
    out: str,
    rules: str,
    backend: str = "official",
    blocks: Sequence[Block] = DEFAULT_BLOCKS,
    max_steps: int = 100,
    log: Any = print,
) -> None:
    """Record ``blocks`` from the CybORG behind ``backend`` (checked to implement ``rules``)."""
    rules = rules_name(rules)
    found = cyborg_rules(backend)
    if found != rules:
        raise ValueError(f"backend={backend!r} implements rules={found!r}, not {rules!r}")
    arrays: dict[str, Any] = {}
    for b, block in enumerate(blocks):
        env = make_cyborg_env(block.red, block.green, max_steps=max_steps, backend=backend)
        per_step: dict[str, list[np.ndarray]] = {}
        per_state: dict[str, list[np.ndarray]] = {}
        policies = []
        for i in range(block.episodes):
            policy = LOCKSTEP_POLICIES[i % len(LOCKSTEP_POLICIES)]
            policies.append(policy)
            steps, states = record_episode(env, policy, block.seed + i, max_steps)
            for k, v in steps.items():
                per_step.setdefault(k, []).append(v)
            for k, v in states.items():
                per_state.setdefault(k, []).append(np.stack(v))
        prefix = f"block{b}"
        arrays[f"{prefix}/meta"] = np.array([block.red, block.green])
        arrays[f"{prefix}/seeds"] = block.seed + np.arange(block.episodes, dtype=np.int64)
        arrays[f"{prefix}/policies"] = np.array(policies)
        for k, v in per_step.items():
            dtype = np.uint8 if k == "obs" else np.int16
            arrays[f"{prefix}/step/{k}"] = np.stack(v).astype(dtype)
        for k, v in per_state.items():
            arrays[f"{prefix}/state/{k}"] = np.stack(v).astype(np.int16)
        if log is not None:
            log(f"recorded {block.episodes} episodes red={block.red} green={block.green}")
    arrays["meta/rules"] = np.asarray(rules)
    arrays["meta/backend"] = np.asarray(load_backend(backend).name)
    arrays["meta/format_version"] = np.asarray(FORMAT_VERSION)
    arrays["meta/max_steps"] = np.asarray(max_steps)
    np.savez_compressed(out, **arrays)


# --- replay ------------------------------------------------------------------------------------


def noise_from_outcomes(steps: dict[str, np.ndarray]) -> StepNoise:
    """Batched ``StepNoise`` (leading axes of the arrays) forcing the recorded outcomes.

    The same rules as ``StepOutcome.noise_kwargs`` + ``jaxcage.noise.forced_noise``: a draw
    CybORG did not make keeps forced_noise's default.
    """
    shape = steps["green_scan"].shape

    def onehot(index: np.ndarray, size: int) -> np.ndarray:
        keys = np.zeros((*shape, size), np.uint32)
        hit = index[..., None] == np.arange(size)
        return np.where(hit & (index[..., None] >= 0), np.uint32(FORCED_KEY), keys)

    def bern(yes: np.ndarray) -> np.ndarray:
        return np.where(yes, 0.0, 1.0).astype(np.float32)

    drawn = steps["exploit_drawn"] == 1
    top = np.where(drawn, steps["exploit_top"] == 1, True)
    other = np.where(drawn, steps["exploit_other"], -1)
    detected = np.where(steps["detected"] >= 0, steps["detected"] == 1, True)
    removable = np.where(steps["privesc_removable"] >= 0, steps["privesc_removable"] == 1, True)
    return StepNoise(
        green_act_u=jnp.asarray(np.where(steps["green_scan"] == 1, 1.0, 0.0).astype(np.float32)),
        green_host_key=jnp.asarray(onehot(steps["green_host"], NUM_HOSTS)),
        red_target_key=jnp.asarray(onehot(steps["red_draw_target"], NUM_HOSTS)),
        exploit_top_u=jnp.asarray(bern(top)),
        exploit_other_key=jnp.asarray(onehot(other, NUM_EXPLOITS)),
        detect_u=jnp.asarray(bern(detected)),
        privesc_u=jnp.asarray(bern(removable)),
    )


@jax.jit
def _replay_program(actions: jax.Array, noise: StepNoise, params: Any) -> Any:
    """(E, T) actions and noise -> per-step states, observations, rewards and traces."""

    def episode(actions_e: jax.Array, noise_e: StepNoise) -> Any:
        def step(state: EnvState, xs: tuple[jax.Array, StepNoise]) -> tuple[EnvState, Any]:
            action, noise_t = xs
            state, obs, reward, trace = transition(state, action, noise_t, params)
            return state, (state, obs, reward, trace)

        _, out = jax.lax.scan(step, init_state(), (actions_e, noise_e))
        return out

    return jax.vmap(episode)(actions, noise)


@dataclass(frozen=True)
class ReplayMismatch:
    """The first differing step of one recorded episode."""

    red: str
    green: str
    policy: str
    seed: int
    step: int  # 0 = reset state, t = after step t
    fields: tuple[str, ...]
    # first step at which the observation, the reward or Red's / Green's action differ; -1: never
    behaviour_step: int = -1

    def format(self) -> str:
        seen = f"; behaviour differs from step {self.behaviour_step}"
        return (
            f"red={self.red} green={self.green} policy={self.policy} seed={self.seed}: "
            f"first mismatch at step {self.step} in {', '.join(self.fields)}"
            + (seen if self.behaviour_step >= 0 else "")
        )


@dataclass(frozen=True)
class ReplayResult:
    """Totals of a replay."""

    rules: str
    recorded_rules: str
    episodes: int
    steps: int
    mismatches: tuple[ReplayMismatch, ...]

    def behavioural(self) -> tuple[ReplayMismatch, ...]:
        """Episodes whose observation, reward or Red / Green actions differ at some step (not
        only hidden state)."""
        return tuple(m for m in self.mismatches if m.behaviour_step >= 0)


_TRACE_NAMES = ("red_action_type", "red_target", "red_success", "red_exploit", "green_scan_host")
_TRACE_RECORDED = {
    "red_action_type": "red_action_type",
    "red_target": "red_target",
    "red_success": "red_success",
    "red_exploit": "exploit",
    "green_scan_host": "green_host",
}


def _first_diff(expected: np.ndarray, got: np.ndarray) -> np.ndarray:
    """(E, T) bool: step differs (all trailing axes compared)."""
    e = expected.astype(np.int64)
    g = got.astype(np.int64)
    axes = tuple(range(2, e.ndim))
    return (e != g).any(axis=axes) if axes else e != g


@dataclass(frozen=True)
class RecordedBlock:
    """One block of a trace file as ``record`` wrote it: per-step outcomes ``step[name]`` (E, T),
    per-state fields ``state[name]`` (E, T + 1, ...; column 0 the reset state), and each
    episode's seed and Blue policy."""

    red: str
    green: str
    step: dict[str, np.ndarray]
    state: dict[str, np.ndarray]
    seeds: np.ndarray
    policies: np.ndarray


def recorded_blocks(data: dict[str, np.ndarray]) -> list[RecordedBlock]:
    """The blocks of a loaded trace file (``dict(np.load(path))``), in recording order."""
    blocks = []
    while f"block{len(blocks)}/meta" in data:
        prefix = f"block{len(blocks)}"
        red, green = (str(x) for x in data[f"{prefix}/meta"])
        fields = {
            kind: {
                k.split("/")[-1]: v for k, v in data.items() if k.startswith(f"{prefix}/{kind}/")
            }
            for kind in ("step", "state")
        }
        blocks.append(
            RecordedBlock(
                red,
                green,
                fields["step"],
                fields["state"],
                data[f"{prefix}/seeds"],
                data[f"{prefix}/policies"],
            )
        )
    return blocks


def replay(path: str, rules: str | None = None) -> ReplayResult:
    """Replay every recorded episode through jaxcage under ``rules`` (default: the recorded
    rule set) and report the first mismatching step of each episode."""
    data = dict(np.load(path))
    recorded = str(data["meta/rules"])
    rules = rules_name(recorded if rules is None else rules)
    max_steps = int(data["meta/max_steps"])
    mismatches: list[ReplayMismatch] = []
    episodes = steps_total = 0
    for block in recorded_blocks(data):
        red, green, step, state = block.red, block.green, block.step, block.state
        params = make_params(red, max_steps=max_steps, green_agent=green, rules=rules)
        noise = noise_from_outcomes(step)
        states, obs, reward, trace = jax.device_get(
            _replay_program(jnp.asarray(step["action"], jnp.int32), noise, params)
        )
        n, t = step["action"].shape
        # diffs[name]: (E, T + 1) bool, column 0 = the reset state.
        diffs: dict[str, np.ndarray] = {}
        reset = jax.device_get(init_state())
        for name, expected in state.items():
            if name in _SKIP[red]:
                continue
            got = np.asarray(getattr(states, name))
            at_reset = np.broadcast_to(np.asarray(getattr(reset, name)), expected[:, 0].shape)
            d0 = _first_diff(expected[:, :1], at_reset[:, None])
            diffs[name] = np.concatenate([d0, _first_diff(expected[:, 1:], got)], axis=1)
        pad = np.zeros((n, 1), bool)
        diffs["obs"] = np.concatenate([pad, _first_diff(step["obs"], obs)], axis=1)
        diffs["reward_tenths"] = np.concatenate([pad, step["reward"] != reward], axis=1)
        for name in _TRACE_NAMES:
            got = np.asarray(getattr(trace, name))
            diffs[f"trace.{name}"] = np.concatenate(
                [pad, _first_diff(step[_TRACE_RECORDED[name]], got)], axis=1
            )
        stacked = np.stack(list(diffs.values()))  # (F, E, T + 1)
        names = list(diffs)
        seen = np.any(np.stack([diffs[k] for k in names if k not in state]), axis=0)
        seeds, policies = block.seeds, block.policies
        for e in range(n):
            bad_steps = np.flatnonzero(stacked[:, e].any(axis=0))
            if bad_steps.size:
                s = int(bad_steps[0])
                fields = tuple(names[f] for f in np.flatnonzero(stacked[:, e, s]))
                behaviour = np.flatnonzero(seen[e])
                first_seen = int(behaviour[0]) if behaviour.size else -1
                mismatches.append(
                    ReplayMismatch(
                        red, green, str(policies[e]), int(seeds[e]), s, fields, first_seen
                    )
                )
        episodes += n
        steps_total += n * t
    return ReplayResult(rules, recorded, episodes, steps_total, tuple(mismatches))


@contextlib.contextmanager
def _flag_dropped(rules: str, dropped: Flag) -> Iterator[None]:
    """Within the block, rule set ``rules`` lacks flag ``dropped`` (diagnostics only: it swaps
    ``jaxcage.rules.RULE_FLAGS``, which ``flag`` reads when tracing, and clears JAX's caches)."""
    saved = rules_mod.RULE_FLAGS
    table = saved.copy()
    table[rules_id(rules), dropped] = False
    rules_mod.RULE_FLAGS = table
    jax.clear_caches()
    try:
        yield
    finally:
        rules_mod.RULE_FLAGS = saved
        jax.clear_caches()


def ablate(path: str, rules: str | None = None) -> dict[Flag, ReplayResult]:
    """Replay ``path`` under ``rules`` (default: the recorded ones) with each of the rule set's
    flags switched off in turn; a flag the recording needs leaves behavioural mismatches."""
    with np.load(path) as data:
        recorded = str(data["meta/rules"])
    name = rules_name(recorded if rules is None else rules)
    out: dict[Flag, ReplayResult] = {}
    for dropped in sorted(get_rule_set(name).flags):
        with _flag_dropped(name, dropped):
            out[dropped] = replay(path, name)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jaxcage.parity.traces", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record", help="record CybORG traces (needs that CybORG)")
    rec.add_argument("--out", default=None, help="default: DATA_PATHS[--rules]")
    rec.add_argument("--rules", default="leaderboard")
    rec.add_argument(
        "--backend", default=None, choices=BACKENDS, help="default: official, debugged for debugged"
    )
    rep = sub.add_parser("replay", help="replay recorded traces through jaxcage")
    rep.add_argument("path", nargs="?", default=DATA_PATH)
    rep.add_argument("--rules", default=None, help="default: the recorded rule set")
    abl = sub.add_parser("ablate", help="replay with each flag of the rule set switched off")
    abl.add_argument("path", nargs="?", default=DATA_PATHS["debugged"])
    abl.add_argument("--rules", default=None, help="default: the recorded rule set")
    args = parser.parse_args(argv)
    if args.command == "record":
        rules = rules_name(args.rules)
        out = args.out or DATA_PATHS[rules]
        backend = args.backend or ("debugged" if rules == "debugged" else "official")
        record(out, rules, backend=backend)
        print(f"wrote {out}")
        return 0
    if args.command == "ablate":
        needed = True
        for dropped, res in ablate(args.path, args.rules).items():
            print(
                f"rules={res.rules} without {dropped.name}: {len(res.mismatches)} of "
                f"{res.episodes} episodes mismatch ({len(res.behavioural())} in observation / "
                "reward / Red's actions)"
            )
            needed &= bool(res.behavioural())
        return 0 if needed else 1
    res = replay(args.path, args.rules)
    for m in res.mismatches[:10]:
        print(m.format())
    print(
        f"replayed {res.episodes} episodes ({res.steps} steps) recorded under "
        f"rules={res.recorded_rules} with jaxcage rules={res.rules}: "
        f"{len(res.mismatches)} mismatching episodes "
        f"({len(res.behavioural())} in observation / reward / Red's actions)"
    )
    return 0 if not res.mismatches else 1


if __name__ == "__main__":
    sys.exit(main())
