"""PPO defender trainer for jaxcage (Flax + optax, compiled end to end).

Modules: ``config`` (``PPOConfig``, ``load_config``), ``features`` (policy inputs), ``networks``,
``rollout``, ``gae``, ``loss``, ``train`` (``make_train``, ``train``), ``checkpoint``, ``logging``,
``probe_env`` (a tiny env for tests).
"""

from jaxcage.ppo.config import PPOConfig, load_config

__all__ = ["PPOConfig", "load_config"]
