"""A trained workflow policy (a search, sweep or universal checkpoint) as a ``PolicyFn``.

The workflow project evaluates a trained agent by sampling its actor's categorical distribution
for the observation followed by the workflow one-hot (``workflow_rl/
executor_async_train_workflow_rl.py``, spec ``../shared/workflows/SPEC.md`` §4). Here that policy
becomes a ``baselines.PolicyFn`` (``(key, obs, sessions, order_idx) -> action`` for one env), so
the one jaxcage evaluation program (``baselines.evaluate_policy``) and the one CybORG loop
(``cyborg_eval.evaluate_in_cyborg``) score a trained network exactly as they score the scripted
baselines; the action rule is the rollout's (``ppo.make_rollout``: ``sample_action`` on the
logits, or their argmax when deterministic).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

from jaxcage.ppo.networks import sample_action
from jaxcage.true_state import RedSessionView
from jaxcage.workflows import logs
from jaxcage.workflows.baselines import PolicyFn
from jaxcage.workflows.config import WorkflowConfig, from_dict
from jaxcage.workflows.orders import NUM_ORDERS, order_letters
from jaxcage.workflows.ppo import make_apply, make_init_params, policy_input

CONFIG_FILE = "experiment_config.json"


def ppo_policy(cfg: WorkflowConfig, net_params: Any, *, deterministic: bool = False) -> PolicyFn:
    """The network ``net_params`` (trained under ``cfg``) acting on one env's observation."""
    apply = make_apply(cfg)

    def policy(
        key: jax.Array, obs: jax.Array, sessions: RedSessionView, order_idx: jax.Array
    ) -> jax.Array:
        del sessions  # the network sees only the observation and the workflow
        x = policy_input(cfg, jnp.asarray(obs)[None], jnp.asarray(order_idx, jnp.int32)[None])
        logits, _ = apply(net_params, x)
        if deterministic:
            return jnp.argmax(logits[0]).astype(jnp.int32)
        return sample_action(key, logits)[0].astype(jnp.int32)

    return policy


@dataclass(frozen=True)
class TrainedPolicy:
    """A checkpoint loaded with the config it was trained under."""

    policy: PolicyFn
    cfg: WorkflowConfig
    params: Any
    meta: dict[str, Any]
    order: int | None  # the workflow it was trained on (None: universal)


def _find_config(path: Path) -> Path:
    for d in (path.parent, path.parent.parent):
        if (d / CONFIG_FILE).is_file():
            return d / CONFIG_FILE
    raise FileNotFoundError(
        f"no {CONFIG_FILE} next to {path} or in its parent: pass the run's config explicitly"
    )


def load_policy(
    path: str | Path, cfg: WorkflowConfig | None = None, *, deterministic: bool = False
) -> TrainedPolicy:
    """Load a ``.npz`` checkpoint written by ``search``/``sweep`` (``checkpoints/`` of a run).

    The config is the run's ``experiment_config.json`` (next to the file or one level up)
    unless ``cfg`` is given; it fixes the network's shape and the policy input.

    Raises:
        FileNotFoundError: no checkpoint, or no config to read.
        ValueError: the checkpoint does not fit the config's network.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no workflow checkpoint at {path}")
    if cfg is None:
        data = json.loads(_find_config(path).read_text())
        data.pop("command", None)
        cfg = from_dict(data)
    template = make_init_params(cfg)(jax.random.key(0))
    try:
        params, meta = logs.load_params(path, template)
    except (ValueError, KeyError) as e:
        raise ValueError(f"{path} does not match the config's network: {e}") from e
    shapes = jax.tree.map(lambda x: x.shape, template)
    if jax.tree.map(lambda x: x.shape, params) != shapes:
        raise ValueError(f"{path}: parameter shapes differ from the config's network")
    order = meta.get("order")
    if order is not None and not 0 <= int(order) < NUM_ORDERS:
        raise ValueError(f"{path}: order {order!r} is not a workflow index")
    return TrainedPolicy(
        policy=ppo_policy(cfg, params, deterministic=deterministic),
        cfg=cfg,
        params=params,
        meta=meta,
        order=None if order is None else int(order),
    )


def load_best(run_dir: str | Path, *, deterministic: bool = False) -> TrainedPolicy:
    """The best workflow's policy of a finished ``search`` / ``sweep`` run (``summary.json``'s
    ``best_order``): that workflow's latest checkpoint, or, for a universal run, the universal
    policy set to follow the best workflow.

    Raises:
        FileNotFoundError: not a finished run directory, or its checkpoint is missing.
        ValueError: the run found no best workflow.
    """
    run = Path(run_dir)
    if not (run / "summary.json").is_file():
        raise FileNotFoundError(f"{run} is not a finished workflow run (no summary.json)")
    summary = json.loads((run / "summary.json").read_text())
    order = summary.get("best_order_index")
    if order is None:
        raise ValueError(f"{run}: the run has no best workflow")
    if summary.get("mode") == "universal":
        path = run / "checkpoints" / "universal_agent.npz"
    else:
        visits = [r for r in summary["workflows"] if r["order"] == order]
        path = (
            run / "checkpoints" / f"workflow_{visits[-1]['iteration']}_{order_letters(order)}.npz"
        )
    return dataclasses.replace(load_policy(path, deterministic=deterministic), order=int(order))


__all__ = ["TrainedPolicy", "load_best", "load_policy", "ppo_policy"]
