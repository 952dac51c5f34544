"""PPO configuration: a frozen, validated dataclass loaded from ``configs/*.yaml``.

Every field is a plain Python value (no traced leaves), so a ``PPOConfig`` is hashable and can be
closed over by the compiled training program. Sizes that follow from other fields (batch size,
number of updates, ...) are properties, never stored, so an override can't leave them stale.
Validation happens in ``__post_init__`` and raises ``ValueError`` with a message naming the field,
before anything is traced or compiled.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from jaxcage.rules import DEFAULT_RULES, RULE_NAMES

# Names the environment understands (``jaxcage.constants.RED_AGENT_NAMES``); repeated here so the
# config can be validated without importing the environment. ``tests/test_config.py`` checks that
# the two lists agree.
RED_AGENTS: tuple[str, ...] = ("b_line", "meander", "sleep")
GREEN_AGENTS: tuple[str, ...] = ("sleep", "random")
ACTIVATIONS: tuple[str, ...] = ("tanh", "relu")
# Extra policy inputs a CybORG blue agent can compute from its own history (see features.py).
FEATURES: tuple[str, ...] = ("prev_action", "prev_obs", "decoys", "time", "scans", "red_guess")

# Fields that say where a run executes (devices, processes), not what it computes: a checkpoint
# resumes under other values of these, and they are taken from the resuming command.
PLACEMENT_FIELDS: tuple[str, ...] = ("num_devices", "coordinator", "num_processes", "process_id")
# Fields that only steer the host loop (how often it logs and checkpoints): the compiled update and
# its results are the same whatever they are, so a run may resume with other values.
HOST_LOOP_FIELDS: tuple[str, ...] = ("updates_per_chunk", "checkpoint_every", "tensorboard")

_RED_ALIASES = {"bline": "b_line", "b-line": "b_line", "redmeander": "meander"}


@dataclasses.dataclass(frozen=True)
class PPOConfig:
    """All settings of one training run (environment, PPO, network, bookkeeping).

    Defaults are the tuned ``configs/default.yaml`` values (a test keeps the two equal); YAML
    files only need to list what differs.
    """

    # --- environment ------------------------------------------------------------------------
    # One red agent, or several for a per-episode mixture: every env draws its opponent afresh
    # (with ``red_weights``, uniform when None) each time its episode ends.
    red_agents: tuple[str, ...] = ("b_line", "meander")
    red_weights: tuple[float, ...] | None = None
    green_agent: str = "sleep"
    max_steps: int = 100  # episode length (CAGE2 evaluates 30, 50 and 100)
    # CybORG version the env reproduces (jaxcage.rules): "current" (today's CybORG 2.1),
    # "leaderboard" (commit 606813b, on which the 2022 CAGE2 leaderboard was scored) or
    # "debugged" (CybORG++'s Debugged_CybORG: today's code plus its six fixes).
    rules: str = DEFAULT_RULES

    # --- rollout / schedule -----------------------------------------------------------------
    num_envs: int = 256
    num_steps: int = 100  # steps per env between updates (the guide's "update every N steps")
    total_timesteps: int = 12_000_000  # per seed; rounded down to whole updates
    num_seeds: int = 1  # independent seeds trained in the same program (vmapped)
    seed: int = 0

    # --- PPO ----------------------------------------------------------------------------------
    lr: float = 5e-4
    anneal_lr: bool = True  # linear decay to 0 over the run
    update_epochs: int = 4  # K_epochs
    num_minibatches: int = 4
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_eps: float = 0.2
    clip_value_loss: bool = True
    vf_coef: float = 0.5
    ent_coef: float = 0.01
    max_grad_norm: float = 0.5
    normalize_advantages: bool = True
    # How each epoch's minibatches are drawn when one policy trains across devices: "global", one
    # permutation of the whole batch (the same result on any number of devices; each epoch
    # all-gathers the batch between devices); "local", each device permutes its own envs' samples
    # and gives 1/D of every minibatch (only gradients cross devices; minibatches stratified by
    # device). Identical on one device.
    minibatch_shuffle: str = "global"
    # Rewards are multiplied by this before GAE/value learning (episode-return metrics are not):
    # CAGE2 returns reach -1000, and unscaled value targets would dominate the clipped gradient.
    reward_scale: float = 0.1
    # CAGE2 episodes only end by the time limit. False (correct): bootstrap V(final_obs) at the
    # cut. True: treat the cut as terminal, as the CAGE2 winners' PPO did (comparison switch).
    treat_truncation_as_terminal: bool = False

    # --- network ------------------------------------------------------------------------------
    hidden_sizes: tuple[int, ...] = (64, 64)
    activation: str = "tanh"
    features: tuple[str, ...] = ("prev_action", "decoys", "time")  # any of FEATURES
    # Start every seed's network from this trained defender (an exported agent or a run
    # directory; same network shape and features) instead of a random init: fine-tuning. The
    # optimiser, environments and keys start fresh (jaxcage/ppo/warm_start.py).
    init_from: str | None = None

    # --- bookkeeping (host side; does not change the compiled update) ------------------------
    updates_per_chunk: int = 20  # updates per compiled call; host logs/checkpoints in between
    checkpoint_every: int = 100  # updates; a checkpoint is also written at the end
    tensorboard: bool = False  # also write TensorBoard events (if a writer is installed)

    # --- placement (host side: where the run executes, not what it computes; jaxcage/sharding.py)
    num_devices: int | None = None  # devices to train on; None: every device JAX sees
    coordinator: str | None = None  # jax.distributed coordinator HOST:PORT (multi-process runs)
    num_processes: int | None = None
    process_id: int | None = None

    def __post_init__(self) -> None:
        # Normalise list-valued fields (YAML gives lists) so the config stays hashable.
        object.__setattr__(self, "red_agents", _normalise_reds(self.red_agents))
        object.__setattr__(self, "hidden_sizes", tuple(self.hidden_sizes))
        object.__setattr__(self, "features", tuple(self.features))
        if self.red_weights is not None:
            object.__setattr__(self, "red_weights", tuple(float(w) for w in self.red_weights))
        self._validate()

    # --- derived sizes ----------------------------------------------------------------------
    @property
    def batch_size(self) -> int:
        """Transitions per update (per seed)."""
        return self.num_envs * self.num_steps

    @property
    def minibatch_size(self) -> int:
        return self.batch_size // self.num_minibatches

    @property
    def num_updates(self) -> int:
        return self.total_timesteps // self.batch_size

    @property
    def env_steps_per_seed(self) -> int:
        """Env steps actually taken per seed (``total_timesteps`` rounded down)."""
        return self.num_updates * self.batch_size

    @property
    def red_probs(self) -> tuple[float, ...]:
        """Normalised per-episode opponent probabilities, aligned with ``red_agents``."""
        w = self.red_weights or tuple(1.0 for _ in self.red_agents)
        s = sum(w)
        return tuple(x / s for x in w)

    # --- conversion ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain YAML-able dict (tuples become lists)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[f.name] = list(v) if isinstance(v, tuple) else v
        return out

    def replace(self, **changes: Any) -> PPOConfig:
        """A copy with some fields changed (validated; unknown names raise ``ValueError``)."""
        return from_dict({**self.to_dict(), **changes})

    # --- validation ---------------------------------------------------------------------------
    def _validate(self) -> None:
        for name in (
            "max_steps",
            "num_envs",
            "num_steps",
            "total_timesteps",
            "num_seeds",
            "update_epochs",
            "num_minibatches",
            "updates_per_chunk",
            "checkpoint_every",
        ):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        for name, low in (("num_devices", 1), ("num_processes", 1), ("process_id", 0)):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < low):
                raise ValueError(f"{name} must be an integer >= {low} (or unset), got {v!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        if not self.red_agents:
            raise ValueError("red_agents must name at least one red agent")
        for r in self.red_agents:
            if r not in RED_AGENTS:
                raise ValueError(f"unknown red agent {r!r}; expected one of {list(RED_AGENTS)}")
        if self.red_weights is not None:
            if len(self.red_weights) != len(self.red_agents):
                raise ValueError(
                    f"red_weights has {len(self.red_weights)} entries but red_agents has "
                    f"{len(self.red_agents)}"
                )
            if any(w < 0 or not math.isfinite(w) for w in self.red_weights) or not any(
                w > 0 for w in self.red_weights
            ):
                raise ValueError(
                    f"red_weights must be >= 0 with a positive sum: {self.red_weights}"
                )
        if self.minibatch_shuffle not in ("global", "local"):
            raise ValueError(
                f"minibatch_shuffle must be 'global' or 'local', got {self.minibatch_shuffle!r}"
            )
        if self.rules not in RULE_NAMES:
            raise ValueError(f"unknown rules {self.rules!r}; expected one of {list(RULE_NAMES)}")
        if self.green_agent not in GREEN_AGENTS:
            raise ValueError(
                f"unknown green agent {self.green_agent!r}; expected one of {list(GREEN_AGENTS)}"
            )
        if self.batch_size % self.num_minibatches:
            raise ValueError(
                f"num_minibatches={self.num_minibatches} does not divide the batch "
                f"num_envs*num_steps={self.batch_size}"
            )
        if self.num_updates < 1:
            raise ValueError(
                f"total_timesteps={self.total_timesteps} is smaller than one update's batch "
                f"(num_envs*num_steps={self.batch_size})"
            )
        for name in ("lr", "clip_eps", "max_grad_norm", "reward_scale"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not v > 0:
                raise ValueError(f"{name} must be a positive number, got {v!r}")
        for name in ("gamma", "gae_lambda"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {v!r}")
        for name in ("vf_coef", "ent_coef"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not v >= 0:
                raise ValueError(f"{name} must be a non-negative number, got {v!r}")
        if not self.hidden_sizes or any(
            isinstance(h, bool) or not isinstance(h, int) or h <= 0 for h in self.hidden_sizes
        ):
            raise ValueError(
                f"hidden_sizes must be a non-empty list of positive ints: {self.hidden_sizes}"
            )
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"unknown activation {self.activation!r}; expected one of {list(ACTIVATIONS)}"
            )
        for feat in self.features:
            if feat not in FEATURES:
                raise ValueError(f"unknown feature {feat!r}; expected any of {list(FEATURES)}")
        if len(set(self.features)) != len(self.features):
            raise ValueError(f"features lists a name twice: {list(self.features)}")
        if self.init_from is not None and (
            not isinstance(self.init_from, str) or not self.init_from.strip()
        ):
            raise ValueError(f"init_from must be a directory path, got {self.init_from!r}")


def _normalise_reds(reds: Any) -> tuple[str, ...]:
    if isinstance(reds, str):
        reds = (reds,)
    out = []
    for r in reds:
        key = str(r).strip().lower()
        out.append(_RED_ALIASES.get(key, key))
    return tuple(out)


# --- construction from dicts / YAML -----------------------------------------------------------

_FIELDS = {f.name: f for f in dataclasses.fields(PPOConfig)}
# ``from __future__ import annotations`` makes field types strings; resolve them once.
_TYPES = typing.get_type_hints(PPOConfig)
# Convenience spellings accepted in YAML / --set (mapped onto the canonical field).
_KEY_ALIASES = {"red_agent": "red_agents", "k_epochs": "update_epochs"}


def _coerce(name: str, value: Any) -> Any:
    """Coerce a YAML/CLI value to the field's declared type, or raise ``ValueError``."""
    tp = _TYPES[name]
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):  # X | None
        if value is None and type(None) in args:
            return None
        tp = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is tuple:
        if isinstance(value, str) and name in ("red_agents",):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{name} must be a list, got {value!r}")
        return tuple(_coerce_scalar(name, args[0], v) for v in value)
    return _coerce_scalar(name, tp, value)


def _coerce_scalar(name: str, tp: Any, value: Any) -> Any:
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ValueError(f"{name} must be true or false, got {value!r}")
    if tp is int:
        # YAML reads 1e7 as a string and 10_000_000 as an int; accept integral floats too.
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise ValueError(f"{name} must be an integer, got {value!r}") from None
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise ValueError(f"{name} must be a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{name} must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ValueError(f"{name} must be a string, got {value!r}")
        return value
    return value


def without_host_fields(cfg: PPOConfig) -> PPOConfig:
    """``cfg`` with the placement and host-loop fields at their defaults: what the run computes.

    Two configs equal under it compile the same update and give the same results, so a
    checkpoint of one resumes under the other and their compiled programs are shared."""
    fields = (*PLACEMENT_FIELDS, *HOST_LOOP_FIELDS)
    defaults = {f: PPOConfig.__dataclass_fields__[f].default for f in fields}
    return dataclasses.replace(cfg, **defaults)


def from_dict(d: Mapping[str, Any]) -> PPOConfig:
    """Build a validated config from a flat mapping; unknown keys raise ``ValueError``."""
    kwargs: dict[str, Any] = {}
    for key, value in d.items():
        name = _KEY_ALIASES.get(key, key)
        if name not in _FIELDS:
            raise ValueError(
                f"unknown config key {key!r}; valid keys: {', '.join(sorted(_FIELDS))}"
            )
        if name in kwargs:
            raise ValueError(f"config key {name!r} given twice (alias {key!r})")
        kwargs[name] = _coerce(name, value)
    return PPOConfig(**kwargs)


def config_dirs() -> list[Path]:
    """Where named configs live: the repo's ``configs/`` (editable install / checkout) and the
    ``jaxcage/_configs`` copy that a wheel force-includes."""
    pkg = Path(__file__).resolve().parent.parent  # .../jaxcage
    return [pkg.parent / "configs", pkg / "_configs"]


def resolve_config_path(name_or_path: str | Path) -> Path:
    """A YAML path as given, or ``<name>.yaml`` in one of ``config_dirs()``."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        if not p.is_file():
            raise FileNotFoundError(f"config file not found: {p}")
        return p
    for d in config_dirs():
        cand = d / f"{name_or_path}.yaml"
        if cand.is_file():
            return cand
    known = sorted({c.stem for d in config_dirs() if d.is_dir() for c in d.glob("*.yaml")})
    raise FileNotFoundError(f"no config named {str(name_or_path)!r}; known configs: {known}")


def load_config(name_or_path: str | Path = "default", **overrides: Any) -> PPOConfig:
    """Load ``configs/<name>.yaml`` (or a YAML file path) and apply field overrides.

    Example: ``load_config("b_line", num_envs=64, lr=1e-3)``.
    """
    path = resolve_config_path(name_or_path)
    with open(path) as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of config keys, got {type(data).__name__}")
    # Canonicalise alias spellings first, so an override (``red_agent=...``) replaces the YAML's
    # ``red_agents`` instead of clashing with it.
    return from_dict({**_canonical_keys(data), **_canonical_keys(overrides)})


def _canonical_keys(d: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in d.items():
        name = _KEY_ALIASES.get(key, key)
        if name in out:
            raise ValueError(f"config key {name!r} given twice (alias {key!r})")
        out[name] = value
    return out


def parse_override(text: str) -> tuple[str, Any]:
    """Parse a CLI ``key=value`` override; the value is read as YAML (``lr=1e-3``,
    ``hidden_sizes=[128]``, ``anneal_lr=false``)."""
    if "=" not in text:
        raise ValueError(f"override must look like key=value, got {text!r}")
    key, raw = text.split("=", 1)
    key = key.strip()
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as e:
        raise ValueError(f"cannot parse value of override {text!r}: {e}") from None
    return key, value
