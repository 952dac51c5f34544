"""Workflow-search configuration: a frozen validated dataclass, from ``configs/workflows*.yaml``.

Mirrors the argparse defaults and run scripts of the workflow project
(``workflow_rl/executor_async_train_workflow_rl.py``, ``run_all_experiments.sh``; spec §6), with
every repo quirk a named field (spec §8): the presets ``workflows_seed_v2`` and
``workflows_seed_v0`` turn them on, the default ``workflows`` keeps the corrected behaviour.

As with ``jaxcage.ppo.config``, every field is a plain Python value, so the config is hashable and
can be closed over by the compiled programs, and validation raises ``ValueError`` naming the field
before anything is traced.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from jaxcage.ppo.config import GREEN_AGENTS, RED_AGENTS, parse_override, resolve_config_path

MODES = ("independent", "universal")
SELECTORS = ("gp", "repo_heuristic")
INHERITS = ("nearest_kendall", "previous", "none")
GP_TARGETS = ("evaluation", "last_batch")
RULES = ("state", "sequence")
COMPROMISES = ("excluding_user0_foothold", "any_red_session")
TARGETS = ("type", "host")
ADVANTAGES = ("gae", "mc_normalized")
INITS = ("orthogonal", "torch")
ACTIVATIONS = ("tanh", "relu")

_RED_ALIASES = {"bline": "b_line", "b-line": "b_line", "b_lineagent": "b_line"}


@dataclasses.dataclass(frozen=True)
class WorkflowConfig:
    """All settings of a workflow search / sweep / baseline run.

    Defaults are ``configs/workflows.yaml`` (a test keeps the two equal).
    """

    # --- environment --------------------------------------------------------------------------
    red_agent: str = "b_line"
    green_agent: str = "sleep"
    max_steps: int = 100
    # V0/V1 replication (spec §8.1a): a workflow's envs never reset; each update continues them
    # for one max_steps window (the evaluation still plays fresh episodes, spec §8.8)
    continuing_windows: bool = False

    # --- compliance (jaxcage.workflows.compliance.ComplianceSpec) -----------------------------
    rule: str = "state"
    compromise: str = "excluding_user0_foothold"
    target: str = "type"
    lam: float = 30.0  # alignment reward = lam * change of running compliance
    nofix_value: float = 0.5  # compliance of an episode without fixes
    nofix_penalty: float = 0.0  # x lam off the alignment of an episode without fixes (V2 0.2)

    # --- search -------------------------------------------------------------------------------
    mode: str = "independent"  # one policy per workflow, or one universal policy for all 120
    selector: str = "gp"  # a true GP-UCB over the 120 orders, or the repo's heuristic (spec §5)
    total_episodes: int = 100_000  # training budget of the whole search
    max_episodes_per_workflow: int = 10_000  # cap per workflow (also the universal... see docs)
    max_workflows: int = 0  # 0: no limit (V0 ran a fixed 20 iterations)
    threshold: float = 0.90  # stop a workflow once its batch-mean compliance reaches this
    early_stop: bool = True  # False: the fixed-episodes ablation (train every workflow to cap)
    patience_updates: int = 0  # plateau stop (no > 0.01 compliance gain); 0 = off
    inherit: str = "nearest_kendall"  # warm start of a new workflow's policy
    feed_failures: bool = False  # add workflows that missed the threshold to the GP (repo: no)
    gp_target: str = "evaluation"  # what the GP sees: a fresh evaluation, or V2's last batch
    eval_episodes: int = 1_000  # stochastic evaluation episodes per trained workflow
    beta: float = 2.0  # UCB exploration weight
    gp_lengthscale: float = 0.3  # Mallows kernel sigma^2 exp(-d_K / l), on standardised returns
    gp_signal_var: float = 1.0
    gp_noise_var: float = 0.1
    first_order: tuple[str, ...] = ()  # optional first workflow, e.g. [user, op_host, ...]

    # --- PPO (the corrected defaults; seed_v2 / seed_v0 presets switch the repo's quirks) -----
    episodes_per_update: int = 200  # envs per update; each runs exactly one episode
    hidden_sizes: tuple[int, ...] = (64, 64)
    activation: str = "tanh"
    init: str = "orthogonal"  # "torch": PyTorch default U(+-1/sqrt(fan_in)) (spec §8.13)
    advantage: str = "gae"  # "mc_normalized": A = R_norm - V, value target R_norm (repo)
    return_leak: bool = False  # repo MC returns run across episode boundaries (spec §8.1b)
    return_norm_eps: float = 1e-5  # MC-return normalisation (g - mean) / (std + eps): V2; V0 1e-8
    update_epochs: int = 4
    num_minibatches: int = 4  # 1 = full batch (repo)
    lr: float = 5e-4
    adam_b1: float = 0.9
    adam_b2: float = 0.999
    adam_eps: float = 1e-5
    max_grad_norm: float = 0.5  # 0 = no clipping (V2)
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_eps: float = 0.2
    clip_value_loss: bool = True
    vf_coef: float = 0.5
    ent_coef: float = 0.01
    normalize_advantages: bool = True
    reward_scale: float = 0.1  # rewards (env + alignment) scaled before value learning
    workflow_input: bool = True  # False: PPO without the 25-dim one-hot (baseline)
    alignment: bool = True  # False: train on the env reward only (baseline)

    # --- sweep / baselines / bookkeeping ------------------------------------------------------
    sweep_episodes_per_workflow: int = 2_000  # every one of the 120 workflows gets this budget
    sweep_chunk: int = 8  # workflows trained side by side in one vmapped program
    # "": every workflow of a sweep starts from scratch; a checkpoint path (e.g. a universal
    # run's checkpoints/universal_agent.npz): every workflow is fine-tuned from those weights
    sweep_init: str = ""
    baseline_order: tuple[str, ...] = ("defender", "enterprise", "op_server", "op_host", "user")
    seed: int = 0
    checkpoints: bool = True

    def __post_init__(self) -> None:
        self._validate()

    # --- derived sizes ------------------------------------------------------------------------
    @property
    def steps_per_update(self) -> int:
        return self.episodes_per_update * self.max_steps

    @property
    def cap_updates(self) -> int:
        """Updates one workflow may take at most (the compiled loop's fixed length)."""
        return max(1, self.max_episodes_per_workflow // self.episodes_per_update)

    @property
    def budget_updates(self) -> int:
        return self.total_episodes // self.episodes_per_update

    @property
    def eval_episodes_run(self) -> int:
        """Evaluation episodes actually run: ``eval_episodes`` rounded up to whole rollouts of
        ``episodes_per_update`` episodes (the evaluation shares the training rollout)."""
        return -(-self.eval_episodes // self.episodes_per_update) * self.episodes_per_update

    @property
    def batch_size(self) -> int:
        return self.episodes_per_update * self.max_steps

    @property
    def minibatch_size(self) -> int:
        return self.batch_size // self.num_minibatches

    def to_dict(self) -> dict[str, Any]:
        return {
            f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
            for f in dataclasses.fields(self)
        }

    def replace(self, **changes: Any) -> WorkflowConfig:
        return from_dict({**self.to_dict(), **changes})

    def compliance_spec(self) -> Any:
        from jaxcage.workflows.compliance import ComplianceSpec

        return ComplianceSpec(
            rule=self.rule,
            compromise=self.compromise,
            target=self.target,
            lam=self.lam,
            nofix_value=self.nofix_value,
            nofix_penalty=self.nofix_penalty,
        )

    def _validate(self) -> None:
        def choice(name: str, options: tuple[str, ...]) -> None:
            v = getattr(self, name)
            if v not in options:
                raise ValueError(f"{name} must be one of {list(options)}, got {v!r}")

        choice("red_agent", RED_AGENTS)
        choice("green_agent", GREEN_AGENTS)
        choice("rule", RULES)
        choice("compromise", COMPROMISES)
        choice("target", TARGETS)
        choice("mode", MODES)
        choice("selector", SELECTORS)
        choice("inherit", INHERITS)
        choice("gp_target", GP_TARGETS)
        choice("advantage", ADVANTAGES)
        choice("init", INITS)
        choice("activation", ACTIVATIONS)
        for name in (
            "max_steps",
            "episodes_per_update",
            "total_episodes",
            "max_episodes_per_workflow",
            "update_epochs",
            "num_minibatches",
            "eval_episodes",
            "sweep_episodes_per_workflow",
            "sweep_chunk",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("max_workflows", "patience_updates", "seed"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {self.threshold}")
        if not 0.0 <= self.nofix_value <= 1.0:
            raise ValueError(f"nofix_value must be in [0, 1], got {self.nofix_value}")
        if self.total_episodes < self.episodes_per_update:
            raise ValueError(
                f"total_episodes ({self.total_episodes}) is smaller than one update "
                f"(episodes_per_update = {self.episodes_per_update})"
            )
        if self.max_episodes_per_workflow < self.episodes_per_update:
            raise ValueError(
                f"max_episodes_per_workflow ({self.max_episodes_per_workflow}) is smaller than "
                f"one update (episodes_per_update = {self.episodes_per_update})"
            )
        if self.sweep_episodes_per_workflow < self.episodes_per_update:
            raise ValueError(
                f"sweep_episodes_per_workflow ({self.sweep_episodes_per_workflow}) is smaller "
                f"than one update (episodes_per_update = {self.episodes_per_update})"
            )
        if self.batch_size % self.num_minibatches:
            raise ValueError(
                f"num_minibatches ({self.num_minibatches}) must divide the batch "
                f"({self.episodes_per_update} episodes x {self.max_steps} steps)"
            )
        if not self.hidden_sizes or any(h <= 0 for h in self.hidden_sizes):
            raise ValueError(f"hidden_sizes must be positive, got {list(self.hidden_sizes)}")
        for name in ("lr", "beta", "gp_lengthscale", "gp_signal_var", "adam_eps"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("gp_noise_var", "max_grad_norm", "lam", "ent_coef", "vf_coef", "clip_eps"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("gamma", "gae_lambda", "adam_b1", "adam_b2"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.return_leak and self.advantage != "mc_normalized":
            raise ValueError("return_leak only applies to advantage: mc_normalized")
        if self.mode == "universal" and not self.workflow_input:
            raise ValueError("mode: universal needs workflow_input: true")
        if self.mode == "universal" and self.continuing_windows:
            raise ValueError(
                "continuing_windows (V0/V1's per-workflow runs) needs mode: independent"
            )
        if not self.return_norm_eps > 0.0:
            raise ValueError(f"return_norm_eps must be > 0, got {self.return_norm_eps}")
        if not self.nofix_penalty >= 0.0:
            raise ValueError(f"nofix_penalty must be >= 0, got {self.nofix_penalty}")
        for name in ("first_order", "baseline_order"):
            order = getattr(self, name)
            if order or name == "baseline_order":
                check_order(order, name)


def _order_names(name: str, value: Any) -> tuple[str, ...]:
    """An order field as 5 canonical type names (``()`` for an empty / null value)."""
    if value is None or (isinstance(value, (list, tuple, str)) and len(value) == 0):
        return ()
    from jaxcage.workflows.orders import order_names

    return tuple(order_names(check_order(value, name)))


def check_order(order: Any, name: str = "order") -> int:
    """The index (0..119) of ``order`` (5 type names or letters), or a ``ValueError``."""
    from jaxcage.workflows.orders import order_index

    try:
        return int(order_index(order if isinstance(order, str) else list(order)))
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(
            f"{name} {list(order)!r} is not a permutation of the 5 types: {e}"
        ) from None


_FIELDS = {f.name: f for f in dataclasses.fields(WorkflowConfig)}
_TYPES = typing.get_type_hints(WorkflowConfig)


def _coerce(name: str, value: Any) -> Any:
    tp = _TYPES[name]
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        tp = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is tuple:
        if name in ("first_order", "baseline_order"):
            return _order_names(name, value)
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{name} must be a list, got {value!r}")
        return tuple(_scalar(name, args[0], v) for v in value)
    return _scalar(name, tp, value)


def _scalar(name: str, tp: Any, value: Any) -> Any:
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ValueError(f"{name} must be true or false, got {value!r}")
    if tp in (int, float):
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise ValueError(f"{name} must be a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{name} must be a number, got {value!r}")
        if tp is int:
            if not float(value).is_integer():
                raise ValueError(f"{name} must be an integer, got {value!r}")
            return int(value)
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ValueError(f"{name} must be a string, got {value!r}")
        value = value.strip()
        if name == "red_agent":
            value = _RED_ALIASES.get(value.lower(), value.lower())
        return value
    return value


def from_dict(d: Mapping[str, Any]) -> WorkflowConfig:
    """A validated config from a flat mapping; unknown keys raise ``ValueError``."""
    kwargs: dict[str, Any] = {}
    for key, value in d.items():
        if key not in _FIELDS:
            raise ValueError(
                f"unknown workflow config key {key!r}; valid keys: {', '.join(sorted(_FIELDS))}"
            )
        kwargs[key] = _coerce(key, value)
    return WorkflowConfig(**kwargs)


def load_config(name_or_path: str | Path = "workflows", **overrides: Any) -> WorkflowConfig:
    """Load ``configs/<name>.yaml`` (or a YAML path) and apply overrides.

    Names are looked up as given, then with a ``workflows_`` prefix, so ``seed_v2`` finds
    ``configs/workflows_seed_v2.yaml``.
    """
    try:
        path = resolve_config_path(name_or_path)
    except FileNotFoundError as e:
        if str(name_or_path).startswith("workflows") or Path(str(name_or_path)).suffix:
            raise
        try:
            path = resolve_config_path(f"workflows_{name_or_path}")
        except FileNotFoundError:
            raise e from None
    with open(path) as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of config keys, got {type(data).__name__}")
    return from_dict({**data, **overrides})


__all__ = ["WorkflowConfig", "check_order", "from_dict", "load_config", "parse_override"]
