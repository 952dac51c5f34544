"""Start a training run from a trained defender's network: ``PPOConfig.init_from`` (fine-tuning).

A longer run is the plainest lever on the CAGE2 score, and a trained defender already holds the
first part of it: continuing from its network (actor and critic) with a fresh learning-rate
schedule spends the new env steps where the old ones stopped. Only the network parameters are
taken, for every seed alike; Adam's moments, the environments and the PRNG keys start fresh, so
``init_from`` is a starting point, not a resume (``jaxcage train --resume`` continues a run
exactly). No CybORG counterpart.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxcage.evaluation import NetworkShape
from jaxcage.export import ExportedAgent, load_agent
from jaxcage.ppo.config import PPOConfig


def start_params(cfg: PPOConfig) -> Any:
    """The single-seed params ``cfg.init_from`` names, checked against ``cfg``'s network.

    Raises:
        FileNotFoundError: the directory is missing or holds no agent or run.
        ValueError: a switch defender, or a network of another shape or other features.
    """
    if cfg.init_from is None:
        raise ValueError("the config has no init_from")
    agent = load_agent(cfg.init_from)
    if not isinstance(agent, ExportedAgent):
        raise ValueError(f"init_from {cfg.init_from}: a switch defender has no single network")
    theirs, ours = NetworkShape.of(agent.config), NetworkShape.of(cfg)
    if theirs != ours:
        raise ValueError(
            f"init_from {cfg.init_from}: its network {theirs} differs from this config's {ours} "
            "(hidden_sizes, activation and features must match)"
        )
    return agent.params


def with_params(seed_params: Any, params: Any) -> Any:
    """``params`` (one seed) broadcast to the leading seed axis of ``seed_params``, leaf by path."""
    ours, tree = jax.tree_util.tree_flatten_with_path(seed_params)
    theirs = dict(jax.tree_util.tree_flatten_with_path(params)[0])
    if {p for p, _ in ours} != set(theirs):
        raise ValueError("init_from's parameters do not match the network's")  # guarded above
    leaves = [jnp.broadcast_to(jnp.asarray(theirs[p], x.dtype), x.shape) for p, x in ours]
    return jax.tree.unflatten(tree, leaves)
