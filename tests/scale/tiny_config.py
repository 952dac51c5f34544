"""The tiny trainer config both subprocess scripts of tests/test_sharding.py start from."""

from jaxcage.ppo.config import PPOConfig

BASE = PPOConfig(
    num_envs=8,
    num_steps=10,
    max_steps=10,
    total_timesteps=8 * 10 * 3,
    num_minibatches=2,
    update_epochs=2,
    num_seeds=1,
    hidden_sizes=(16,),
    features=("prev_action", "time"),
    updates_per_chunk=1,
    checkpoint_every=1,
)
