"""Generate CybORG's per-step rewards for the statistical parity cells, reproducibly from seeds.

Runs the official evaluation loop (``CybORG/Evaluation/evaluation.py``: ``ChallengeWrapper`` over
``CybORG(Scenario2, agents={'Red': red})``, Green = the scenario's SleepAgent) for every cell
blue policy x red agent x episode length, and stores the per-step rewards in tenths (int16; CybORG
rounds each step's reward to 0.1) plus the per-episode returns (int32 tenths).

Episode ``i`` of cell ``c`` is a pure function of ``(base_seed, c, i)``: a ``numpy.SeedSequence``
over those (with ``c`` hashed by CRC32 of its name) yields one seed for Python's ``random``
(``random.seed`` before ``reset``, CybORG's only RNG) and one for the Blue policy's
``numpy.random.default_rng``. Episodes are therefore independent of the order they are run in, and
``python -m jaxcage.parity generate`` reproduces the committed file bit for bit.

Rule sets (``jaxcage.rules``): ``tests/data/cyborg_returns.npz`` holds today's CybORG
(``current``); ``tests/data/cyborg_returns_leaderboard.npz`` the official CybORG at the 2022
leaderboard commit 606813b (``python -m jaxcage.parity generate --rules leaderboard --backend
official`` with that CybORG on ``PYTHONPATH``), for the cells where the two rule sets differ
(``LEADERBOARD_CELLS``: a Blue that never Restores or places decoys sees identical games);
``tests/data/cyborg_returns_debugged.npz`` CybORG++'s ``Debugged_CybORG`` (``python -m
jaxcage.parity generate --rules debugged --backend debugged`` with ``$JAXCAGE_DEBUGGED_CYBORG`` set,
see ``jaxcage.reference.cyborg_env``), for ``DEBUGGED_CELLS``.
"""

from __future__ import annotations

import contextlib
import os
import platform
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import numpy as np

from jaxcage.constants import RED_AGENT_NAMES
from jaxcage.parity.policies import STATS_POLICIES, get_policy
from jaxcage.reference.cyborg_env import CyborgEnv, load_backend, make_cyborg_env
from jaxcage.reference.versions import cyborg_rules
from jaxcage.rules import DEFAULT_RULES, rules_name

EPISODE_LENGTHS: tuple[int, ...] = (30, 50, 100)
DEFAULT_EPISODES = 1000
CHUNK = 1000
# Cells whose returns vary so much that 1000 CybORG episodes cannot resolve the 2% margin (TOST
# needs margin / se >= 2.5 for 80% power; se ~ sd / sqrt(n), sd estimated from 4000 jaxcage
# episodes): more CybORG episodes are generated for them. E.g. random/meander/100 has sd ~ 288 for
# a margin of ~11.6, so n ~ 5000.
BOOSTED_EPISODES: dict[str, int] = {
    "random/b_line/30": 5000,
    "sleep/meander/30": 6000,
    "random/meander/30": 5000,
    "random/b_line/50": 8000,
    "react_restore/b_line/50": 2000,
    "sleep/meander/50": 8000,
    "random/meander/50": 10000,
    "random/b_line/100": 16000,
    "react_restore/b_line/100": 4000,
    "random/meander/100": 8000,
}
DEFAULT_BASE_SEED = 153  # the seed of the CAGE2 final leaderboard evaluation (README)
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Cell:
    """One statistical-parity cell."""

    blue: str
    red: str
    length: int

    @property
    def key(self) -> str:
        return f"{self.blue}/{self.red}/{self.length}"

    @classmethod
    def parse(cls, key: str) -> Cell:
        blue, red, length = key.split("/")
        return cls(blue, red, int(length))


ALL_CELLS: tuple[Cell, ...] = tuple(
    Cell(blue, red, length)
    for length in EPISODE_LENGTHS
    for red in RED_AGENT_NAMES
    for blue in STATS_POLICIES
)
LEADERBOARD_CHUNK = 100
# Leaderboard-rules cells and their CybORG episodes: the Blue policies that Restore (without a
# Restore both rule sets play the same game) against the two real red agents, 100 steps, and the
# 30-step react_restore / B_line cell of issue 11. The counts are what one shared 2-core machine
# produced in the time it had (CybORG steps are the cost), so TOST resolves the 2% margin only
# where the variance allows; more episodes = larger counts here and the same command.
LEADERBOARD_EPISODES: dict[str, int] = {
    "react_restore/b_line/30": 2000,
    "react_restore/b_line/100": 1000,
    "react_restore/meander/100": 1000,
    "random/b_line/100": 1000,
    "random/meander/100": 1000,
}
LEADERBOARD_CELLS: tuple[Cell, ...] = tuple(Cell.parse(k) for k in LEADERBOARD_EPISODES)
# Debugged-rules cells (CybORG++ Debugged_CybORG) and their CybORG episodes. Its fixes change the
# game for every Blue: the reward counts user-level shells (sleep), User3 and Enterprise1/2 fall
# to new exploits (B_line's route), Exploit-over-Scan changes what react_restore reacts to, and
# DecoyVsftpd moves to 21 (decoy_heavy). Counts as for the leaderboard cells: what the shared
# machine produced in the time it had.
DEBUGGED_EPISODES: dict[str, int] = {
    "sleep/b_line/100": 200,
    "sleep/meander/100": 300,
    "react_restore/b_line/30": 1000,
    "react_restore/b_line/100": 800,
    "react_restore/meander/100": 600,
    "random/b_line/100": 400,
    "decoy_heavy/b_line/100": 400,
}
DEBUGGED_CELLS: tuple[Cell, ...] = tuple(Cell.parse(k) for k in DEBUGGED_EPISODES)
# Cells and CybORG episodes of the rule sets other than ``current``.
RULES_EPISODES: dict[str, dict[str, int]] = {
    "leaderboard": LEADERBOARD_EPISODES,
    "debugged": DEBUGGED_EPISODES,
}
RULES_CELLS: dict[str, tuple[Cell, ...]] = {
    "current": ALL_CELLS,
    "leaderboard": LEADERBOARD_CELLS,
    "debugged": DEBUGGED_CELLS,
}
DATA_PATHS: dict[str, str] = {
    "current": "tests/data/cyborg_returns.npz",
    "leaderboard": "tests/data/cyborg_returns_leaderboard.npz",
    "debugged": "tests/data/cyborg_returns_debugged.npz",
}


def episode_seeds(base_seed: int, cell: Cell, episode: int) -> tuple[int, int]:
    """(seed for Python's ``random`` / CybORG, seed for the Blue policy's numpy generator)."""
    entropy = [int(base_seed), zlib.crc32(cell.key.encode()), int(episode)]
    cyborg_seed, policy_seed = np.random.SeedSequence(entropy).generate_state(2)
    return int(cyborg_seed), int(policy_seed)


def run_episode(env: CyborgEnv, cell: Cell, base_seed: int, episode: int) -> np.ndarray:
    """Per-step rewards (tenths, int16) of one CybORG episode of ``cell``."""
    cyborg_seed, policy_seed = episode_seeds(base_seed, cell, episode)
    policy = get_policy(cell.blue)
    rng = np.random.default_rng(policy_seed)
    obs = env.reset(seed=cyborg_seed)
    out = np.empty(cell.length, np.int16)
    for t in range(cell.length):
        obs, reward, _, _ = env.step(policy.act_numpy(obs, rng))
        out[t] = round(reward * 10)
    return out


def generate_cell(
    cell: Cell,
    episodes: int = DEFAULT_EPISODES,
    base_seed: int = DEFAULT_BASE_SEED,
    backend: str = "auto",
    start: int = 0,
) -> np.ndarray:
    """(episodes, length) int16 per-step rewards (tenths) of episodes ``start`` onwards."""
    env = make_cyborg_env(cell.red, "sleep", max_steps=cell.length, backend=backend)
    rewards = np.empty((episodes, cell.length), np.int16)
    for i in range(episodes):
        rewards[i] = run_episode(env, cell, base_seed, start + i)
    return rewards


def reference_versions(backend: str) -> dict[str, str]:
    """Package versions recorded with the data (for provenance, not checked)."""
    out = {"python": platform.python_version(), "numpy": np.__version__, "backend": backend}
    for dist in ("csle-cyborg", "gym-csle-cyborg", "CybORG"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[dist] = metadata.version(dist)
    return out


def save_dataset(
    path: str,
    rewards: dict[str, np.ndarray],
    base_seed: int,
    backend: str,
    rules: str = DEFAULT_RULES,
) -> None:
    """Write the npz: ``rewards/<cell>`` (n, L) int16 and ``returns/<cell>`` (n,) int32 tenths.

    ``meta/rules`` is written for rule sets other than ``current`` (older files lack it).
    """
    arrays: dict[str, Any] = {}
    for key, r in sorted(rewards.items()):
        arrays[f"rewards/{key}"] = r.astype(np.int16)
        arrays[f"returns/{key}"] = r.astype(np.int32).sum(axis=1).astype(np.int32)
    versions = reference_versions(backend)
    arrays["meta/base_seed"] = np.asarray(base_seed, np.int64)
    arrays["meta/format_version"] = np.asarray(FORMAT_VERSION, np.int64)
    arrays["meta/versions"] = np.array([f"{k}={v}" for k, v in sorted(versions.items())])
    if rules != DEFAULT_RULES:
        arrays["meta/rules"] = np.asarray(rules_name(rules))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    np.savez_compressed(path, **arrays)


@dataclass(frozen=True)
class Dataset:
    """The committed CybORG samples."""

    base_seed: int
    rewards: dict[str, np.ndarray]  # cell key -> (n, L) int16 tenths
    returns: dict[str, np.ndarray]  # cell key -> (n,) int32 tenths
    versions: tuple[str, ...]
    rules: str = DEFAULT_RULES  # jaxcage.rules rule set of the CybORG that made them


def load_dataset(path: str) -> Dataset:
    """Read a file written by ``save_dataset``."""
    with np.load(path) as data:
        rewards = {k[len("rewards/") :]: data[k] for k in data.files if k.startswith("rewards/")}
        returns = {k[len("returns/") :]: data[k] for k in data.files if k.startswith("returns/")}
        return Dataset(
            base_seed=int(data["meta/base_seed"]),
            rewards=rewards,
            returns=returns,
            versions=tuple(str(v) for v in data["meta/versions"]),
            rules=str(data["meta/rules"]) if "meta/rules" in data.files else DEFAULT_RULES,
        )


def cell_episodes(cell: Cell, episodes: int | None = None, rules: str = DEFAULT_RULES) -> int:
    """Episodes generated for ``cell``: ``episodes`` if given, else ``DEFAULT_EPISODES`` raised to
    ``BOOSTED_EPISODES[cell]`` for the high-variance cells whose 2% margin needs a larger sample;
    for the other rule sets ``RULES_EPISODES[rules][cell]`` (``LEADERBOARD_EPISODES``,
    ``DEBUGGED_EPISODES``)."""
    if episodes is not None:
        return episodes
    name = rules_name(rules)
    if name != DEFAULT_RULES:
        return RULES_EPISODES[name][cell.key]
    return max(DEFAULT_EPISODES, BOOSTED_EPISODES.get(cell.key, 0))


def generate(
    out: str,
    cells: Iterable[Cell] = ALL_CELLS,
    episodes: int | None = None,
    base_seed: int = DEFAULT_BASE_SEED,
    backend: str = "auto",
    parts_dir: str | None = None,
    log: Callable[[str], None] | None = print,
    rules: str = DEFAULT_RULES,
    chunk: int = CHUNK,
) -> dict[str, np.ndarray]:
    """Generate every cell and write ``out``.

    ``rules`` names the rule set the CybORG behind ``backend`` implements; it is checked
    (``jaxcage.reference.versions.cyborg_rules``) before anything runs, and recorded. ``chunk``:
    episodes per cached part (the leaderboard samples use ``LEADERBOARD_CHUNK``).

    Episodes are produced in chunks of ``CHUNK`` and cached in ``parts_dir`` (default
    ``runs/parity_generate``), so an interrupted run resumes where it stopped and a larger
    ``episodes`` only adds the missing episodes (episode ``i`` never depends on the others).
    """
    rules = rules_name(rules)
    found = cyborg_rules(backend)
    if found != rules:
        raise ValueError(
            f"the CybORG behind backend={backend!r} implements rules={found!r}, not {rules!r}"
        )
    suffix = "" if rules == DEFAULT_RULES else f"_{rules}"
    parts = parts_dir or os.path.join("runs", f"parity_generate{suffix}")
    os.makedirs(parts, exist_ok=True)
    cells = list(cells)
    counts = [cell_episodes(cell, episodes, rules) for cell in cells]
    pieces: dict[str, list[np.ndarray]] = {cell.key: [] for cell in cells}
    # Round-robin over the cells, one chunk each, so an interrupted run leaves every cell some
    # episodes (the result does not depend on the order: episode i only depends on its seeds).
    for start in range(0, max(counts, default=0), chunk):
        for cell, n in zip(cells, counts, strict=True):
            if start >= n:
                continue
            stop = min(start + chunk, n)
            name = f"{cell.key.replace('/', '__')}__seed{base_seed}__{start}-{stop}.npy"
            part = os.path.join(parts, name)
            if not os.path.exists(part):
                t0 = time.perf_counter()
                block = generate_cell(cell, stop - start, base_seed, backend, start=start)
                np.save(part, block)
                if log is not None:
                    sec = time.perf_counter() - t0
                    ret = block.astype(np.int64).sum(axis=1) / 10
                    log(
                        f"{cell.key} episodes {start}..{stop - 1}: mean return {ret.mean():.2f} "
                        f"({(stop - start) * cell.length / sec:.0f} steps/s, {sec:.0f}s)"
                    )
            pieces[cell.key].append(np.load(part))
    rewards = {key: np.concatenate(p) for key, p in pieces.items()}
    save_dataset(out, rewards, base_seed, load_backend(backend).name, rules)
    return rewards
