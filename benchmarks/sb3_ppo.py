"""Stable-Baselines3 PPO through ``CageVectorEnv``: a local check, not part of jaxcage or CI.

SB3 (and torch) are not jaxcage dependencies; run this from a separate environment that has them
plus jaxcage's own dependencies, with the repository on ``PYTHONPATH``::

    python3 -m venv /work/venvs/sb3
    /work/venvs/sb3/bin/pip install stable-baselines3 torch jax flax optax gymnasium \
        scipy pyyaml matplotlib
    PYTHONPATH=$PWD /work/venvs/sb3/bin/python benchmarks/sb3_ppo.py --num-envs 8 --timesteps 8192
    PYTHONPATH=$PWD /work/venvs/sb3/bin/python benchmarks/sb3_ppo.py --inline-runtime  # one core

SB3 has its own ``VecEnv`` API (``reset()`` returns observations only, ``step`` returns
``(obs, rewards, dones, infos)`` with one info dict per env, and auto-resets with the finished
episode's last observation in ``infos[i]["terminal_observation"]``). That is gymnasium's
``SAME_STEP`` auto-reset, which ``CageVectorEnv`` does natively, so ``CageSB3VecEnv`` below only
reshapes the outputs. CAGE2 episodes end by time limit, flagged ``TimeLimit.truncated`` so SB3
bootstraps from the last observation.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env.base_vec_env import VecEnv

from jaxcage.gym_adapter import CageVectorEnv
from jaxcage.host_step import inline_cpu_runtime


class CageSB3VecEnv(VecEnv):
    """``CageVectorEnv`` behind SB3's ``VecEnv`` interface."""

    def __init__(self, num_envs: int, red_agent: str = "b_line", max_steps: int = 100) -> None:
        self.envs = CageVectorEnv(num_envs, red_agent, max_steps=max_steps)
        super().__init__(
            num_envs, self.envs.single_observation_space, self.envs.single_action_space
        )
        self._actions: np.ndarray | None = None
        self._seed: int | None = None
        self.returns = np.zeros(num_envs)
        self.episode_returns: list[float] = []

    def reset(self) -> np.ndarray:
        obs, _ = self.envs.reset(seed=self._seed)
        self._seed = None
        self.returns[:] = 0
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions).reshape(self.num_envs)

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        assert self._actions is not None
        obs, rewards, terminated, truncated, infos = self.envs.step(self._actions)
        dones = terminated | truncated
        self.returns += rewards
        out: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        for i in np.flatnonzero(dones):
            out[i] = {
                "terminal_observation": infos["final_obs"][i],
                "TimeLimit.truncated": bool(truncated[i] and not terminated[i]),
                "episode": {"r": float(self.returns[i]), "l": int(self.envs.params.max_steps)},
            }
            self.episode_returns.append(float(self.returns[i]))
            self.returns[i] = 0
        return obs, rewards.astype(np.float32), dones, out

    def seed(self, seed: int | None = None) -> list[int | None]:
        self._seed = seed
        return [seed] * self.num_envs

    def close(self) -> None:
        self.envs.close()

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        return [getattr(self.envs, attr_name)] * self.num_envs

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        setattr(self.envs, attr_name, value)

    def env_method(self, method_name: str, *args: Any, indices: Any = None, **kwargs: Any) -> list:
        return [getattr(self.envs, method_name)(*args, **kwargs)]

    def env_is_wrapped(self, wrapper_class: Any, indices: Any = None) -> list[bool]:
        return [False] * self.num_envs


def main() -> None:
    parser = argparse.ArgumentParser(description="SB3 PPO through CageVectorEnv (local check)")
    parser.add_argument("--num-envs", type=int, default=8)
    parser.add_argument("--timesteps", type=int, default=8192)
    parser.add_argument("--n-steps", type=int, default=128, help="PPO rollout length per env")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="write a JSON summary here")
    parser.add_argument(
        "--inline-runtime",
        action="store_true",
        help="jaxcage.host_step.inline_cpu_runtime() first (JAX on one core, one-thread pool)",
    )
    args = parser.parse_args()
    if args.inline_runtime:
        inline_cpu_runtime()
        torch.set_num_threads(1)  # the process now runs on one core: one torch thread, not two
    env = CageSB3VecEnv(args.num_envs)
    env.seed(args.seed)
    model = PPO("MlpPolicy", env, n_steps=args.n_steps, batch_size=256, seed=args.seed, verbose=0)
    start = time.perf_counter()
    model.learn(total_timesteps=args.timesteps)
    elapsed = time.perf_counter() - start
    returns = list(env.episode_returns)  # the training episodes (the rate loop below adds more)
    # Env-only rate through the same adapter, with SB3's policy out of the loop.
    obs = env.reset()
    rng = np.random.default_rng(0)
    t0, calls = time.perf_counter(), 0
    while time.perf_counter() - t0 < 2.0:
        env.step_async(rng.integers(0, 145, size=args.num_envs))
        env.step_wait()
        calls += 1
    env_rate = calls * args.num_envs / (time.perf_counter() - t0)
    summary = {
        "num_envs": args.num_envs,
        "inline_cpu_runtime": bool(args.inline_runtime),
        "torch_threads": torch.get_num_threads(),
        "timesteps": int(model.num_timesteps),
        "learn_seconds": elapsed,
        "learn_steps_per_s": model.num_timesteps / elapsed,
        "adapter_steps_per_s": env_rate,
        "episodes": len(returns),
        "mean_return_first_5": float(np.mean(returns[:5])),
        "mean_return_last_5": float(np.mean(returns[-5:])),
        "obs_shape": list(obs.shape),
    }
    print(json.dumps(summary, indent=2))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(summary, f, indent=2)


if __name__ == "__main__":
    main()
