"""Actor-critic MLP (Flax linen): separate policy and value towers, PureJaxRL style.

Separate towers because CAGE2 value targets (returns down to about -100 after reward scaling) and
policy gradients differ in scale by orders of magnitude; sharing a trunk lets the value loss
dominate the features. Orthogonal initialisation with a small (0.01) policy-head gain starts the
policy near uniform, the usual PPO recipe (Andrychowicz et al. 2021, "What matters in on-policy
RL").
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax.linen.initializers import constant, orthogonal

_ACTIVATIONS = {"tanh": nn.tanh, "relu": nn.relu}


class ActorCritic(nn.Module):
    """``apply(params, x) -> (logits (..., num_actions), value (...))``."""

    num_actions: int
    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "tanh"

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        act = _ACTIVATIONS[self.activation]
        gain = np.sqrt(2.0)
        a = x
        for i, h in enumerate(self.hidden_sizes):
            a = act(
                nn.Dense(
                    h, kernel_init=orthogonal(gain), bias_init=constant(0.0), name=f"actor_{i}"
                )(a)
            )
        logits = nn.Dense(
            self.num_actions,
            kernel_init=orthogonal(0.01),
            bias_init=constant(0.0),
            name="actor_out",
        )(a)
        c = x
        for i, h in enumerate(self.hidden_sizes):
            c = act(
                nn.Dense(
                    h, kernel_init=orthogonal(gain), bias_init=constant(0.0), name=f"critic_{i}"
                )(c)
            )
        value = nn.Dense(
            1, kernel_init=orthogonal(1.0), bias_init=constant(0.0), name="critic_out"
        )(c)
        return logits, jnp.squeeze(value, axis=-1)


def make_network(num_actions: int, hidden_sizes: Sequence[int], activation: str) -> ActorCritic:
    return ActorCritic(
        num_actions=num_actions, hidden_sizes=tuple(hidden_sizes), activation=activation
    )


def sample_action(key: jax.Array, logits: jax.Array) -> jax.Array:
    """Draw actions from ``Categorical(logits)`` (last axis) by inverting the CDF.

    Exactly the categorical distribution, but one uniform draw per sample instead of the one
    Gumbel draw per action that ``jax.random.categorical`` makes: with 145 actions, threefry
    bits for the Gumbel noise were ~60% of the trainer's rollout time on CPU (BENCHMARKS.md).
    """
    probs = jax.nn.softmax(logits, axis=-1)
    cdf = jnp.cumsum(probs, axis=-1)
    u = jax.random.uniform(key, (*logits.shape[:-1], 1), dtype=cdf.dtype) * cdf[..., -1:]
    # The action is the first index whose CDF exceeds u; zero-probability actions (flat CDF
    # steps) are skipped, and the clamp guards against u * total rounding up to the total.
    count = jnp.sum(cdf <= u, axis=-1)
    return jnp.minimum(count, logits.shape[-1] - 1).astype(jnp.int32)
