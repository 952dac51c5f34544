"""Export a trained defender as a small, self-contained agent directory, and read it back.

The CAGE2 submissions were directories a reviewer could drop next to CybORG's
``Evaluation/evaluation.py`` (cage-challenge-2) and load in its ``agent = ...`` line. An exported
jaxcage agent is the same kind of thing, holding only what inference needs:

* ``params.npz``: the network parameters of one seed, one array per ``/``-joined flax path;
* ``agent.json``: format version, the training config (network shape, policy features), the rule
  set it was trained under and where it came from (run, seed, env steps);
* ``eval_*.json``: the CAGE2 tables measured for the run, if any (``jaxcage eval`` output);
* ``README.md``: how to score it with the official loop.

A switch defender (``jaxcage.switch``) is a directory of such directories: ``agent.json`` of kind
``jaxcage-switch-agent`` naming the default member's and each specialist's subdirectory.

``jaxcage.submission.BlueAgent`` loads either such a directory or a training run directory.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from jaxcage.evaluation import NetworkShape, load_run
from jaxcage.ppo import checkpoint as ckpt
from jaxcage.ppo.config import PPOConfig, from_dict
from jaxcage.ppo.features import input_size
from jaxcage.ppo.train import TrainResult, make_network_for
from jaxcage.rules import rules_name
from jaxcage.switch import SwitchAgent

AGENT_FILE = "agent.json"
PARAMS_FILE = "params.npz"
README_FILE = "README.md"
FORMAT_VERSION = 1
KIND = "jaxcage-blue-agent"
SWITCH_KIND = "jaxcage-switch-agent"
DEFAULT_MEMBER = "default"
_SEP = "/"


@dataclasses.dataclass(frozen=True)
class ExportedAgent:
    """A single-seed defender: network params, the config that shapes them, and its rule set."""

    params: Any
    config: PPOConfig
    rules: str
    meta: dict[str, Any]

    def policy_spec(self) -> tuple[Any, NetworkShape]:
        """``(params, shape)`` for ``jaxcage.evaluation`` (the ``Defender`` protocol)."""
        return self.params, NetworkShape.of(self.config)


def rules_of(cfg: PPOConfig) -> str:
    """The rule set (``jaxcage.rules``) a config trains under."""
    return cfg.rules


def from_run(
    run_dir: str | Path, seed_index: int | None = None, *, _depth: int = 0
) -> ExportedAgent:
    """The defender of a training run: ``seed_index``, or the seed with the best final training
    return when the run trained several (chosen from training metrics only, as ``evaluate``).
    A fine-tuned run's ``meta`` names the defenders it started from (``init_from``, nearest
    first) and, where all are readable, ``env_steps_total`` over the chain."""
    result: TrainResult = load_run(run_dir)
    cfg = result.config
    if seed_index is None:
        seed_index = result.best_seed() if cfg.num_seeds > 1 else 0
    if not 0 <= seed_index < cfg.num_seeds:
        raise ValueError(f"seed_index {seed_index} out of range for {cfg.num_seeds} seeds")
    params = jax.tree.map(lambda x: np.asarray(x[seed_index]), result.params)
    meta: dict[str, Any] = {
        "source_run": str(Path(run_dir)),
        "seed_index": seed_index,
        "num_seeds": cfg.num_seeds,
        "env_steps": int(result.env_steps),
        "train_wall_time_s": round(float(result.wall_time), 1),
    }
    if cfg.init_from is not None:
        lineage = _lineage(cfg.init_from, _depth + 1)
        meta["init_from"] = lineage
        known = [a["env_steps"] for a in lineage if isinstance(a.get("env_steps"), int)]
        if len(known) == len(lineage):
            meta["env_steps_total"] = int(result.env_steps) + sum(known)
    return ExportedAgent(params=params, config=cfg, rules=rules_of(cfg), meta=meta)


_MAX_LINEAGE = 16


def _lineage(source: str, depth: int) -> list[dict[str, Any]]:
    """The chain of defenders a fine-tuned run started from (``PPOConfig.init_from``), nearest
    first: each one's directory, env steps (None where it can no longer be read) and rules. An
    exported agent carries its own chain in ``agent.json``; a run directory's is read from its
    config."""
    p = Path(source)
    try:
        if depth > _MAX_LINEAGE:
            raise ValueError("init_from chain too long (a cycle of run directories?)")
        if (p / AGENT_FILE).is_file() or not (p / ckpt.CHECKPOINT_NAME).is_file():
            parent = load_agent(p)
        else:
            parent = from_run(p, _depth=depth)
    except (FileNotFoundError, ValueError) as e:
        return [{"source": source, "env_steps": None, "note": str(e)}]
    if not isinstance(parent, ExportedAgent):
        return [{"source": source, "env_steps": None, "note": "a switch defender"}]
    here = {"source": source, "env_steps": parent.meta.get("env_steps"), "rules": parent.rules}
    distilled = parent.meta.get("distilled")
    if isinstance(distilled, dict):  # ``jaxcage distill`` output: its env steps are its source's
        here["distilled_with"] = distilled.get("config", {}).get("teacher")
    return [here, *parent.meta.get("init_from", [])]


_RULES_NOTE = {
    "current": "today's CybORG, e.g. csle-cyborg",
    "leaderboard": "the original CybORG at cage-challenge-2 commit 606813b (the 2022 leaderboard)",
    "debugged": "CybORG++'s Debugged_CybORG (alan-turing-institute/CybORG_plus_plus c343476)",
}


def _readme(agent: ExportedAgent, name: str) -> str:
    cfg, steps = agent.config, agent.meta.get("env_steps")
    trained = f", {steps:,} env steps" if isinstance(steps, int) else ""
    chain = agent.meta.get("init_from") or []
    if chain:
        total = agent.meta.get("env_steps_total")
        trained += f", fine-tuned from {chain[0]['source']}" + (
            f" ({total:,} env steps in all)" if isinstance(total, int) else ""
        )
    trained_rules = agent.meta.get("trained_rules")
    if trained_rules and trained_rules != agent.rules:
        trained += (
            f".\nTrained under the `{trained_rules}` rules and shipped for the `{agent.rules}` "
            "game (`jaxcage export --rules`)"
        )
    distilled = agent.meta.get("distilled")
    if isinstance(distilled, dict):
        dcfg = distilled.get("config", {})
        trained += (
            f".\nThen taught the `{dcfg.get('teacher')}` teacher's play for the "
            f"`{dcfg.get('rules')}` game by DAgger (`jaxcage distill`; agent.json "
            "`meta.distilled` has its iterations)"
        )
    taught = [a for a in chain if a.get("distilled_with")]
    if taught:
        trained += (
            f".\nIts chain includes {taught[0]['source']}, taught the "
            f"`{taught[0]['distilled_with']}` teacher's play by DAgger (`jaxcage distill`)"
        )
    rules = _RULES_NOTE.get(agent.rules, "see jaxcage's PARITY.md")
    return (
        f"# jaxcage defender ({agent.rules} rules)\n\n"
        f"PPO policy trained by jaxcage: hidden sizes {list(cfg.hidden_sizes)}, features "
        f"{list(cfg.features)}, red agents {list(cfg.red_agents)}{trained}.\n"
        f"Rule set `{agent.rules}`: score it in {rules}.\n\n" + _how_to_score(name)
    )


def _how_to_score(name: str) -> str:
    return (
        "Score it with CybORG's official `CybORG/Evaluation/evaluation.py` by replacing its\n"
        "`agent = BlueLoadAgent()` line with\n\n"
        "```python\n"
        "from jaxcage.submission import BlueAgent\n\n"
        f'agent = BlueAgent("{name}")\n'
        "```\n\n"
        f"or run `jaxcage eval --run {name} --engine cyborg --episodes 1000`.\n"
    )


def check_agent_dir(out_dir: str | Path) -> None:
    """Raise ValueError if writing an agent to ``out_dir`` would overwrite anything but an agent
    (``save_agent`` checks it; a command that computes first checks it before it starts)."""
    out = Path(out_dir)
    if out.is_dir() and not (out / AGENT_FILE).is_file() and any(out.iterdir()):
        raise ValueError(f"{out} exists and is not an exported agent; refusing to overwrite it")


def save_agent(agent: ExportedAgent | SwitchAgent, out_dir: str | Path) -> Path:
    """Write ``agent`` to ``out_dir`` (created; an existing agent there is replaced)."""
    check_agent_dir(out_dir)
    out = Path(out_dir)
    if isinstance(agent, SwitchAgent):
        return _save_switch(agent, out)
    out.mkdir(parents=True, exist_ok=True)
    flat = traverse_util.flatten_dict(jax.device_get(agent.params), sep=_SEP)
    arrays: dict[str, Any] = {str(k): np.asarray(v) for k, v in flat.items()}
    np.savez(out / PARAMS_FILE, **arrays)
    header = {
        "format": FORMAT_VERSION,
        "kind": KIND,
        "rules": agent.rules,
        "config": agent.config.to_dict(),
        "meta": agent.meta,
    }
    (out / AGENT_FILE).write_text(json.dumps(header, indent=2) + "\n")
    (out / README_FILE).write_text(_readme(agent, str(out)))
    return out


def _save_switch(agent: SwitchAgent, out: Path) -> Path:
    members: dict[str, ExportedAgent] = {}
    for name, member in [(DEFAULT_MEMBER, agent.default), *agent.specialists.items()]:
        if not isinstance(member, ExportedAgent):
            raise ValueError(f"switch member {name!r} must be a single-network agent")
        members[name] = member
    # Members first, header last: a directory with a header is always complete.
    if (out / AGENT_FILE).is_file():
        (out / AGENT_FILE).unlink()
    out.mkdir(parents=True, exist_ok=True)
    for name, member in members.items():
        save_agent(member, out / name)
    header = {
        "format": FORMAT_VERSION,
        "kind": SWITCH_KIND,
        "rules": agent.rules,
        "default": DEFAULT_MEMBER,
        "specialists": {r: r for r in agent.reds},
        "meta": dict(agent.meta),
    }
    (out / AGENT_FILE).write_text(json.dumps(header, indent=2) + "\n")
    (out / README_FILE).write_text(_switch_readme(agent, str(out)))
    return out


def _switch_readme(agent: SwitchAgent, name: str) -> str:
    reds = ", ".join(agent.reds)
    return (
        f"# jaxcage switch defender ({agent.rules} rules)\n\n"
        "Plays `default/` for the first 4 steps, then the specialist trained against the red\n"
        f"agent its first scans identify ({reds}; `default/` for any other), as the CAGE2 winner\n"
        "did (jaxcage/switch.py). Each subdirectory is an exported single-network defender.\n\n"
        + _how_to_score(name)
    )


def compose_switch(
    default: str | Path, specialists: Mapping[str, str | Path], out_dir: str | Path
) -> Path:
    """``jaxcage export --run DEFAULT --specialist RED=PATH ...``: a switch defender from run or
    agent directories, written to ``out_dir`` (checked before anything is written)."""
    agent = SwitchAgent(
        default=_single(default),
        specialists={red: _single(path) for red, path in specialists.items()},
        meta={"default": str(default), "specialists": {r: str(p) for r, p in specialists.items()}},
    )
    return save_agent(agent, out_dir)


def _single(path: str | Path) -> ExportedAgent:
    agent = load_agent(path)
    if not isinstance(agent, ExportedAgent):
        raise ValueError(f"{path} is a switch defender; a member must be a single network")
    return agent


def export_run(
    run_dir: str | Path,
    out_dir: str | Path,
    seed_index: int | None = None,
    rules: str | None = None,
) -> Path:
    """``jaxcage export``: a run directory's defender as an agent directory.

    ``rules`` ships it for another game than the one it trained on (``agent.json`` then says
    both: ``rules`` to score it on, ``meta.trained_rules``); default: its training rules. The
    ``eval_*.json`` tables next to the checkpoint (``jaxcage eval`` output, each naming its
    rules), if any, are copied along as the agent's recorded scores.

    Raises:
        ValueError: unknown ``rules`` (before anything is written).
    """
    target = None if rules is None else rules_name(rules)
    agent = from_run(run_dir, seed_index)
    if target is not None and target != agent.rules:
        meta = {**agent.meta, "trained_rules": agent.rules}
        agent = dataclasses.replace(agent, rules=target, meta=meta)
    out = save_agent(agent, out_dir)
    for table in sorted(Path(run_dir).glob("eval_*.json")):
        shutil.copyfile(table, out / table.name)
    return out


def load_agent(path: str | Path) -> ExportedAgent | SwitchAgent:
    """An exported agent directory (a single network or a switch defender), or a training run
    directory (its best seed).

    Raises:
        FileNotFoundError: ``path`` is neither (the message says what was expected).
        ValueError: the directory's files are malformed or do not fit their config.
    """
    p = Path(path)
    if not p.is_dir():
        raise FileNotFoundError(f"agent directory {p} does not exist")
    if (p / AGENT_FILE).is_file():
        return _load_exported(p)
    if (p / ckpt.CHECKPOINT_NAME).is_file():
        return from_run(p)
    raise FileNotFoundError(
        f"{p} is neither an exported agent (no {AGENT_FILE}; make one with "
        f"`jaxcage export --run RUN --out DIR`) nor a training run (no {ckpt.CHECKPOINT_NAME})"
    )


def _load_switch(p: Path, header: dict[str, Any]) -> SwitchAgent:
    def member(name: Any) -> ExportedAgent:
        if not isinstance(name, str) or Path(name).name != name:
            raise ValueError(f"{p / AGENT_FILE}: bad member directory {name!r}")
        agent = _load_exported(p / name) if (p / name / AGENT_FILE).is_file() else None
        if not isinstance(agent, ExportedAgent):
            raise ValueError(f"{p / name} is not an exported single-network agent")
        return agent

    specialists = header.get("specialists")
    if not isinstance(specialists, dict):
        raise ValueError(f"{p / AGENT_FILE}: 'specialists' must map red agents to directories")
    return SwitchAgent(
        default=member(header.get("default")),
        specialists={str(r): member(d) for r, d in specialists.items()},
        meta=dict(header.get("meta", {})),
    )


def _load_exported(p: Path) -> ExportedAgent | SwitchAgent:
    try:
        header = json.loads((p / AGENT_FILE).read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{p / AGENT_FILE} is not valid JSON: {err}") from err
    if not isinstance(header, dict) or header.get("format") != FORMAT_VERSION:
        got = header.get("format") if isinstance(header, dict) else header
        raise ValueError(f"{p / AGENT_FILE}: unsupported agent format {got!r}")
    if header.get("kind") == SWITCH_KIND:
        return _load_switch(p, header)
    cfg = from_dict(header["config"])
    if not (p / PARAMS_FILE).is_file():
        raise FileNotFoundError(f"{p} has {AGENT_FILE} but no {PARAMS_FILE}")
    with np.load(p / PARAMS_FILE) as z:
        flat = {k: z[k] for k in z.files}
    # Check every array against the network this config builds (shapes only, nothing runs), so
    # a mismatched file fails here rather than inside a traced call.
    network = make_network_for(cfg)
    template = jax.eval_shape(
        network.init, jax.random.key(0), jnp.zeros((1, input_size(cfg.features)), jnp.float32)
    )
    expected: dict[str, Any] = dict(traverse_util.flatten_dict(template, sep=_SEP))
    if set(flat) != set(expected):
        missing, extra = sorted(set(expected) - set(flat)), sorted(set(flat) - set(expected))
        raise ValueError(
            f"{p / PARAMS_FILE} does not fit its config: missing {missing}, unexpected {extra}"
        )
    for k, t in expected.items():
        if flat[k].shape != t.shape or flat[k].dtype != t.dtype:
            raise ValueError(
                f"{p / PARAMS_FILE}: {k} is {flat[k].dtype}{flat[k].shape}, the config's network "
                f"expects {t.dtype}{t.shape}"
            )
    params = traverse_util.unflatten_dict(flat, sep=_SEP)
    rules = str(header.get("rules", rules_of(cfg)))
    return ExportedAgent(params=params, config=cfg, rules=rules, meta=dict(header.get("meta", {})))
