"""Actor-critic MLP (Flax linen): separate policy and value towers, PureJaxRL style.

Separate towers because CAGE2 value targets (returns down to about -100 after reward scaling) and
policy gradients differ in scale by orders of magnitude; sharing a trunk lets the value loss
dominate the features. Orthogonal initialisation with a small (0.01) policy-head gain starts the
policy near uniform, the usual PPO recipe (Andrychowicz et al. 2021, "What matters in on-policy
RL").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax.linen.initializers import constant, orthogonal

from jaxcage.ppo.features import PolicyInput, first_layer, input_size

_ACTIVATIONS = {"tanh": nn.tanh, "relu": nn.relu}


class InputDense(nn.Module):
    """The first layer of a tower: ``nn.Dense`` with the same parameters (``kernel``, ``bias``) and
    initialisation, that also takes a compact ``PolicyInput`` (see ``features.first_layer``)."""

    features: int
    input_features: tuple[str, ...]
    kernel_init: Callable[..., jax.Array]

    @nn.compact
    def __call__(self, x: jax.Array | PolicyInput) -> jax.Array:
        in_size = input_size(self.input_features) if isinstance(x, PolicyInput) else x.shape[-1]
        kernel = self.param("kernel", self.kernel_init, (in_size, self.features), jnp.float32)
        bias = self.param("bias", constant(0.0), (self.features,), jnp.float32)
        if isinstance(x, PolicyInput):
            return first_layer(x, kernel, self.input_features) + bias
        return x @ kernel + bias


class ActorCritic(nn.Module):
    """``apply(params, x) -> (logits (..., num_actions), value (...))``.

    ``x`` is the float input vector (``features.policy_input``) or its compact form
    (``features.compact_input`` with ``input_features``, what the trainer uses); both give the
    same outputs from the same parameters.
    """

    num_actions: int
    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "tanh"
    input_features: tuple[str, ...] = ()

    @nn.compact
    def __call__(self, x: jax.Array | PolicyInput) -> tuple[jax.Array, jax.Array]:
        logits = self._tower(x, "actor", self.num_actions, 0.01)
        value = self._tower(x, "critic", 1, 1.0)
        return logits, jnp.squeeze(value, axis=-1)

    def _tower(
        self, x: jax.Array | PolicyInput, name: str, out_size: int, out_gain: float
    ) -> jax.Array:
        act = _ACTIVATIONS[self.activation]
        sizes = [*self.hidden_sizes, out_size]
        names = [f"{name}_{i}" for i in range(len(self.hidden_sizes))] + [f"{name}_out"]
        gains = [np.sqrt(2.0)] * len(self.hidden_sizes) + [out_gain]
        h = InputDense(sizes[0], self.input_features, orthogonal(gains[0]), name=names[0])(x)
        for size, layer, gain in zip(sizes[1:], names[1:], gains[1:], strict=True):
            dense = nn.Dense(
                size, kernel_init=orthogonal(gain), bias_init=constant(0.0), name=layer
            )
            h = dense(act(h))
        return h


def make_network(
    num_actions: int,
    hidden_sizes: Sequence[int],
    activation: str,
    input_features: Sequence[str] = (),
) -> ActorCritic:
    return ActorCritic(
        num_actions=num_actions,
        hidden_sizes=tuple(hidden_sizes),
        activation=activation,
        input_features=tuple(input_features),
    )


# Actions per block of ``sample_action``'s two-level CDF search (145 actions: 10 blocks).
_BLOCK = 16


def sample_action(key: jax.Array, logits: jax.Array) -> jax.Array:
    """Draw actions from ``Categorical(logits)`` (last axis) by inverting the CDF, in two levels.

    Exactly the categorical distribution, but one uniform draw per sample instead of the one
    Gumbel draw per action that ``jax.random.categorical`` makes: with 145 actions, threefry
    bits for the Gumbel noise were ~60% of the trainer's rollout time on CPU (BENCHMARKS.md).
    The CDF is searched by blocks of ``_BLOCK`` actions (which block, then where in it), because
    XLA's CPU cumulative sum costs (length x window): a 145-wide cumsum cost more than the
    network's forward pass at 256 envs; 10 + 16 wide ones are ~10x cheaper.
    """
    n = logits.shape[-1]
    num_blocks = -(-n // _BLOCK)
    w = jnp.exp(logits - jnp.max(logits, axis=-1, keepdims=True))  # unnormalised probabilities
    pad = [(0, 0)] * (w.ndim - 1) + [(0, num_blocks * _BLOCK - n)]
    w = jnp.pad(w, pad).reshape(*w.shape[:-1], num_blocks, _BLOCK)
    block_mass = w.sum(axis=-1)
    block_cdf = jnp.cumsum(block_mass, axis=-1)
    u = jax.random.uniform(key, (*logits.shape[:-1], 1), dtype=w.dtype) * block_cdf[..., -1:]
    # The first block whose CDF exceeds u, then the first action in it whose CDF exceeds u;
    # zero-probability actions (flat CDF steps) are skipped, and the clamps guard against
    # u * total rounding up to the total.
    block = jnp.minimum(jnp.sum(block_cdf <= u, axis=-1), num_blocks - 1)
    before = jnp.take_along_axis(block_cdf - block_mass, block[..., None], axis=-1)
    inside = jnp.take_along_axis(w, block[..., None, None], axis=-2)[..., 0, :]
    offset = jnp.minimum(jnp.sum(before + jnp.cumsum(inside, axis=-1) <= u, axis=-1), _BLOCK - 1)
    return jnp.minimum(block * _BLOCK + offset, n - 1).astype(jnp.int32)


def init_each(init: Callable[[jax.Array], Any], keys: jax.Array) -> Any:
    """``init(key)`` for every key of ``keys`` (a leading batch axis), one after another.

    Not ``jax.vmap(init)``: orthogonal initialisers call QR, and a batched QR on XLA:CPU is
    jaxlib's LAPACK FFI kernel splitting the batch over the same intra-op thread pool that runs
    it (``ParallelBatchMap``). When every pool thread is inside such a kernel (two layers'
    inits run concurrently on a 2-core machine), each waits for work no free thread can run:
    the program deadlocks (seen in ``workflows sweep``; reproduced by ~100 calls of a jitted
    ``vmap`` of an init, never with this ``lax.map``). Unbatched QR runs inline. The values are
    the vmapped ones (the same per-key draws and per-matrix factorisations).
    """
    return jax.lax.map(init, keys)
