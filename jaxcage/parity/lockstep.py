"""Level 1 parity: step CybORG and jaxcage side by side and compare everything after every step.

Per step (mirroring ``CybORG/Shared/EnvironmentController.py::step``): the Blue policy picks an
action from CybORG's observation; CybORG steps; the outcomes of its random draws are read back
(``jaxcage.reference.extract.read_outcome``) and forced into jaxcage's deterministic
``transition`` through ``jaxcage.noise.forced_noise``; then the two engines must agree exactly on
the 52-dim observation, the reward (CybORG's rounded reward x 10 == jaxcage's ``reward_tenths``),
Red's action (type, target, success, exploit), Green's scan target, and every ``EnvState``
quantity extracted from CybORG's objects. The very first comparison is made right after reset, so
a wrong initial state is caught before any step.

An episode stops at its first mismatching step (the states have diverged); the report carries
every field that differs at that step, the seed, and the Blue and Red action histories.
"""

from __future__ import annotations

import functools
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import jax
import numpy as np

from jaxcage.constants import (
    BLUE_ACTION_NAMES,
    EXPLOIT_NAMES,
    HOST_NAMES,
    Decoy,
    Exploit,
    Host,
    RedActionType,
)
from jaxcage.dynamics.step import transition
from jaxcage.env import make_params
from jaxcage.noise import forced_noise
from jaxcage.parity.policies import LOCKSTEP_POLICIES, get_policy
from jaxcage.reference import extract
from jaxcage.reference.cyborg_env import CyborgEnv, make_cyborg_env
from jaxcage.rules import DEFAULT_RULES, rules_name
from jaxcage.state import EnvState, init_state

# Seeds of lockstep episodes: episode i of a run with base seed s uses random.seed(s + i) for CybORG
# and numpy default_rng(s + i) for the Blue policy's uniforms.
DEFAULT_SEED = 20_240_601


@dataclass(frozen=True)
class FieldDiff:
    """One quantity on which the engines disagree."""

    name: str
    cyborg: Any
    jaxcage: Any


@dataclass
class Mismatch:
    """The first step of an episode at which the engines disagree."""

    red: str
    green: str
    policy: str
    seed: int
    episode: int
    step: int  # 0 = right after reset, t = after the t-th step
    diffs: list[FieldDiff]
    blue_actions: list[int]
    red_actions: list[str]
    rules: str = DEFAULT_RULES

    def format(self, history: int = 15) -> str:
        """Human-readable report: repro parameters, differing fields, recent action history."""
        lines = [
            f"MISMATCH red={self.red} green={self.green} policy={self.policy} seed={self.seed} "
            f"rules={self.rules} (episode {self.episode}) at step {self.step}:",
        ]
        for d in self.diffs:
            lines.append(f"  {d.name}: cyborg={_fmt(d.cyborg)} jaxcage={_fmt(d.jaxcage)}")
        start = max(0, len(self.blue_actions) - history)
        lines.append(f"  history (steps {start + 1}..{len(self.blue_actions)}; blue | red):")
        for t in range(start, len(self.blue_actions)):
            blue = BLUE_ACTION_NAMES[self.blue_actions[t]]
            lines.append(f"    {t + 1:3d}  {blue:<24s} | {self.red_actions[t]}")
        lines.append(
            f"  repro: python -m jaxcage.parity lockstep --red {self.red} --green {self.green} "
            f"--policy {self.policy} --seed {self.seed} --rules {self.rules} --episodes 1 --verbose"
        )
        return "\n".join(lines)


def _fmt(value: Any) -> str:
    arr = np.asarray(value)
    if arr.ndim == 0:
        return str(arr.item())
    if arr.dtype == bool:
        arr = arr.astype(np.int8)
    return np.array2string(arr, separator=",", max_line_width=200).replace("\n", "")


@dataclass
class LockstepResult:
    """Totals of a lockstep run."""

    episodes: int = 0
    steps: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)
    seconds: float = 0.0
    coverage: Counter[str] = field(default_factory=Counter)  # how often each event was compared

    def merge(self, other: LockstepResult) -> None:
        self.episodes += other.episodes
        self.steps += other.steps
        self.mismatches.extend(other.mismatches)
        self.seconds += other.seconds
        self.coverage.update(other.coverage)

    def coverage_lines(self) -> list[str]:
        """The coverage counters, grouped by prefix, one line per group."""
        groups: dict[str, list[str]] = {}
        for key, count in sorted(self.coverage.items()):
            group, _, name = key.partition(":")
            groups.setdefault(group, []).append(f"{name} {count}")
        return [f"{group}: {', '.join(items)}" for group, items in groups.items()]


@functools.lru_cache(maxsize=4096)
def _cached_noise(items: tuple[tuple[str, Any], ...]) -> Any:
    # Step outcomes come from a small discrete set, so memoising forced_noise saves building a
    # dozen tiny device arrays per step (a sizeable share of the lockstep's run time).
    return forced_noise(**dict(items))


def _as_comparable(value: Any) -> np.ndarray:
    arr = np.asarray(value)
    return arr.astype(np.int64) if arr.dtype == bool or arr.dtype.kind in "iu" else arr


def compare_state(
    cyborg_state: dict[str, np.ndarray], jax_state: EnvState, red: str
) -> list[FieldDiff]:
    """Differences between an extracted CybORG state and a (host-side) jaxcage state.

    Fields of a red agent that is not in play are skipped: jaxcage keeps them at reset values and
    CybORG has no such agent to read them from.
    """
    skip = set()
    if red != "b_line":
        skip.update(extract.BLINE_FIELDS)
    if red != "meander":
        skip.update(extract.MEANDER_FIELDS)
    diffs = []
    for name, expected in cyborg_state.items():
        if name in skip:
            continue
        got = getattr(jax_state, name)
        if not np.array_equal(_as_comparable(expected), _as_comparable(got)):
            diffs.append(FieldDiff(name, expected, np.asarray(got)))
    return diffs


def _compare_step(
    obs_c: np.ndarray,
    reward_c: float,
    outcome: extract.StepOutcome,
    obs_j: np.ndarray,
    reward_j: int,
    trace: Any,
) -> list[FieldDiff]:
    diffs = []
    if not np.array_equal(obs_c, obs_j):
        diffs.append(FieldDiff("obs", obs_c, obs_j))
    reward_tenths = round(reward_c * 10)
    if reward_tenths != int(reward_j):
        diffs.append(FieldDiff("reward_tenths", reward_tenths, int(reward_j)))
    green = -1 if outcome.green_host is None else outcome.green_host
    for name, expected in (
        ("red_action_type", outcome.red_action_type),
        ("red_target", outcome.red_target),
        ("red_success", outcome.red_success),
        ("red_exploit", outcome.exploit),
        ("green_scan_host", green),
    ):
        got = np.asarray(getattr(trace, name)).item()
        if int(expected) != int(got):
            diffs.append(FieldDiff(f"trace.{name}", expected, got))
    return diffs


def _count(
    coverage: Counter[str],
    action: int,
    outcome: extract.StepOutcome,
    before: dict[str, np.ndarray],
    after: dict[str, np.ndarray],
) -> None:
    """Tally what a step exercised, so a report can show the comparison covered the rare paths."""
    coverage[f"blue:{BLUE_ACTION_NAMES[action].split()[0]}"] += 1
    kind = RedActionType(outcome.red_action_type).name.lower()
    coverage[f"red:{kind} {'ok' if outcome.red_success else 'failed'}"] += 1
    if outcome.exploit >= 0:
        ok = "ok" if outcome.red_success else "failed"
        coverage[f"exploit:{EXPLOIT_NAMES[outcome.exploit]} {ok}"] += 1
    if outcome.exploit_drawn:
        coverage[f"draw:exploit {'top' if outcome.exploit_top else 'other'}"] += 1
    if outcome.detected is not None:
        coverage[f"draw:shell {'detected' if outcome.detected else 'undetected'}"] += 1
    if outcome.privesc_removable is not None:
        which = "removable" if outcome.privesc_removable else "hidden"
        coverage[f"draw:privesc upgraded {which}"] += 1
    if outcome.red_draw_target is not None:
        coverage["draw:red target"] += 1
    if outcome.green_scan:
        coverage["draw:green scan"] += 1
    # Rare paths, read from the CybORG states around the step.
    kind_id = outcome.red_action_type
    if kind_id == RedActionType.DISCOVER_NETWORK_SERVICES and not after["red_last_dns_ports"]:
        coverage["path:scan of unreachable Op host"] += 1
    if kind_id == RedActionType.IMPACT and outcome.red_success and not after["ot_pid_valid"]:
        coverage["path:Impact after Restore(Op_Server0)"] += 1
    if after["decoys"].sum() > before["decoys"].sum():
        coverage["path:decoy placed"] += 1
    if after["decoys"][:, -1].max() >= 2:
        coverage["path:steps with stacked Vsftpd decoys"] += 1
    if before["bline_stage"] == 11 and after["bline_stage"] == 1:
        coverage["path:B_line stage-12 restart"] += 1
    if after["meander_escalated"].sum() < before["meander_escalated"].sum():
        coverage["path:Meander un-escalation"] += 1
    if after["red_priv"][Host.USER0] > 1:
        coverage["path:steps with a 2nd Red session on User0"] += 1
    # Paths that only the CybORG++ fixes (rules "debugged") open.
    target = outcome.red_target
    eternal_blue = outcome.red_success and outcome.exploit == Exploit.ETERNAL_BLUE
    if eternal_blue and target in (Host.ENTERPRISE1, Host.ENTERPRISE2):
        coverage["path:EternalBlue ok on Enterprise1/2"] += 1
    if outcome.red_success and outcome.exploit == Exploit.SQL_INJECTION and target == Host.USER3:
        coverage["path:SQLInjection ok on User3"] += 1
    if ((after["decoys"][:, Decoy.VSFTPD] > 0) & (after["decoys"][:, Decoy.APACHE] > 0)).any():
        coverage["path:steps with Vsftpd and Apache decoys on one host"] += 1
    if outcome.detected and outcome.green_host == target:
        coverage["path:Green scan and a detected shell on one host"] += 1


def _red_label(outcome: extract.StepOutcome) -> str:
    kind = RedActionType(outcome.red_action_type).name
    target = outcome.red_target
    where = (
        f"subnet {target}"
        if outcome.red_action_type == RedActionType.DISCOVER_REMOTE_SYSTEMS
        else (HOST_NAMES[target] if target >= 0 else "")
    )
    extra = ""
    if outcome.exploit >= 0:
        extra += f" [{EXPLOIT_NAMES[outcome.exploit]}]"
    if outcome.detected is not None:
        extra += " detected" if outcome.detected else " undetected"
    return f"{kind} {where} -> {'ok' if outcome.red_success else 'fail'}{extra}"


class LockstepRunner:
    """Holds one compiled ``transition`` and CybORG envs, and runs lockstep episodes.

    ``rules`` is the jaxcage rule set compared (``jaxcage.rules``); it must match the CybORG code
    that ``backend`` imports (``leaderboard`` for an official CybORG at 606813b).
    """

    def __init__(self, backend: str = "auto", rules: str = DEFAULT_RULES) -> None:
        self.backend = backend
        self.rules = rules_name(rules)
        self._transition = jax.jit(transition)
        self._envs: dict[tuple[str, str], CyborgEnv] = {}
        self._init_state = jax.device_get(init_state())

    def env(self, red: str, green: str, max_steps: int) -> CyborgEnv:
        key = (red, green)
        if key not in self._envs:
            self._envs[key] = make_cyborg_env(red, green, max_steps=max_steps, backend=self.backend)
        env = self._envs[key]
        env.max_steps = max_steps
        env.wrapper.max_steps = max_steps
        return env

    def run_episode(
        self,
        red: str,
        green: str,
        policy_name: str,
        seed: int,
        episode: int = 0,
        max_steps: int = 100,
        log: Callable[[str], None] | None = None,
        coverage: Counter[str] | None = None,
    ) -> tuple[int, Mismatch | None]:
        """One lockstep episode. Returns (steps compared, first mismatch or None).

        ``coverage``, if given, is updated with counts of what the compared steps exercised.
        """
        env = self.env(red, green, max_steps)
        params = make_params(red, max_steps=max_steps, green_agent=green, rules=self.rules)
        policy = get_policy(policy_name)
        rng = np.random.default_rng(seed)
        obs = env.reset(seed=seed)
        index = extract.episode_index(env)
        state = init_state()
        blue_hist: list[int] = []
        red_hist: list[str] = []

        def mismatch(step: int, diffs: list[FieldDiff]) -> Mismatch:
            return Mismatch(
                red, green, policy_name, seed, episode, step, diffs, blue_hist, red_hist, self.rules
            )

        cy_state = extract.extract_state(env, index)
        diffs = compare_state(cy_state, self._init_state, red)
        if diffs:
            return 0, mismatch(0, diffs)
        for t in range(1, max_steps + 1):
            action = policy.act_numpy(obs, rng)
            blue_hist.append(action)
            pre = extract.snapshot(env, index)
            try:
                obs, reward, _, _ = env.step(action)
                outcome = extract.read_outcome(env, pre)
            except (extract.ExtractionError, NotImplementedError) as err:
                red_hist.append(f"<{type(err).__name__}: {err}>")
                return t, mismatch(t, [FieldDiff("cyborg_error", repr(err), None)])
            red_hist.append(_red_label(outcome))
            prev_state, cy_state = cy_state, extract.extract_state(env, index)
            if coverage is not None:
                _count(coverage, action, outcome, prev_state, cy_state)
            noise = _cached_noise(tuple(sorted(outcome.noise_kwargs().items())))
            state, obs_j, reward_j, trace = self._transition(state, action, noise, params)
            host_state, obs_j, reward_j, trace = jax.device_get((state, obs_j, reward_j, trace))
            diffs = _compare_step(obs, reward, outcome, obs_j, reward_j, trace)
            diffs += compare_state(cy_state, host_state, red)
            if log is not None:
                log(f"  {t:3d} {BLUE_ACTION_NAMES[action]:<24s} | {red_hist[-1]}  r={reward:.1f}")
            if diffs:
                return t, mismatch(t, diffs)
        return max_steps, None


@dataclass(frozen=True)
class LockstepConfig:
    """One block of lockstep episodes."""

    red: str
    green: str = "sleep"
    policies: tuple[str, ...] = LOCKSTEP_POLICIES
    episodes: int = 100
    max_steps: int = 100
    seed: int = DEFAULT_SEED


def run_lockstep(
    configs: Iterable[LockstepConfig],
    backend: str = "auto",
    runner: LockstepRunner | None = None,
    stop_after: int | None = None,
    log: Callable[[str], None] | None = None,
    verbose: bool = False,
    rules: str = DEFAULT_RULES,
) -> LockstepResult:
    """Run lockstep blocks; episode i of a block uses policy ``policies[i % len]``, seed+i.

    Args:
        configs: blocks to run.
        backend: CybORG backend (see ``jaxcage.reference.cyborg_env``).
        runner: reuse a runner (and its compiled transition) across calls (its rules win).
        rules: jaxcage rule set of a new runner (``jaxcage.rules``).
        stop_after: stop once this many mismatching episodes were found.
        log: progress sink (e.g. ``print``); ``verbose`` also logs every step.
    """
    runner = runner or LockstepRunner(backend, rules)
    total = LockstepResult()
    for cfg in configs:
        start = time.perf_counter()
        block = LockstepResult()
        for i in range(cfg.episodes):
            policy = cfg.policies[i % len(cfg.policies)]
            steps, bad = runner.run_episode(
                cfg.red,
                cfg.green,
                policy,
                seed=cfg.seed + i,
                episode=i,
                max_steps=cfg.max_steps,
                log=log if verbose else None,
                coverage=block.coverage,
            )
            block.episodes += 1
            block.steps += steps
            if bad is not None:
                block.mismatches.append(bad)
                if log is not None:
                    log(bad.format())
                if stop_after is not None and len(total.mismatches) + len(block.mismatches) >= (
                    stop_after
                ):
                    break
        block.seconds = time.perf_counter() - start
        total.merge(block)
        if log is not None:
            log(
                f"lockstep red={cfg.red} green={cfg.green} rules={runner.rules}: "
                f"{block.episodes} episodes, "
                f"{block.steps} steps, {len(block.mismatches)} mismatching episodes "
                f"({block.seconds:.1f}s)"
            )
        if stop_after is not None and len(total.mismatches) >= stop_after:
            break
    return total
