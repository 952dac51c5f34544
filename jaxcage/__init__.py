"""jaxcage: CAGE Challenge 2 (CybORG 2.1 Scenario2) in JAX, with an end-to-end compiled PPO trainer.

Public API::

    env, params = jaxcage.make("b_line", max_steps=100)
    obs, state = env.reset(key, params)
    obs, state, reward, done, info = env.step(key, state, action, params)

    cfg = jaxcage.load_config("default")
    result = jaxcage.train(cfg)
    table = jaxcage.evaluate(result, engine="jax")
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from jaxcage.env import CageEnv, make
from jaxcage.state import EnvParams, EnvState

__version__ = "0.1.0"

# Trainer-side names are imported lazily so that `import jaxcage` stays light for env-only users.
_LAZY = {
    "PPOConfig": "jaxcage.ppo.config",
    "load_config": "jaxcage.ppo.config",
    "train": "jaxcage.ppo.train",
    "TrainResult": "jaxcage.ppo.train",
    "evaluate": "jaxcage.evaluation",
    "EvalTable": "jaxcage.evaluation",
}

__all__ = [  # the env API, then the lazily imported trainer API
    "CageEnv",
    "EnvParams",
    "EnvState",
    "make",
    "__version__",
    "PPOConfig",
    "load_config",
    "train",
    "TrainResult",
    "evaluate",
    "EvalTable",
]


if TYPE_CHECKING:  # what the lazy names are, for type checkers and IDEs
    from jaxcage.evaluation import EvalTable, evaluate
    from jaxcage.ppo.config import PPOConfig, load_config
    from jaxcage.ppo.train import TrainResult, train


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'jaxcage' has no attribute {name!r}")
