"""Gymnasium adapters: drive jaxcage from NumPy code (SB3 / CleanRL style) with no JAX knowledge.

Two classes, both NumPy in and NumPy out:

* ``CageVectorEnv``: a ``gymnasium.vector.VectorEnv`` over ``num_envs`` environments, stepped by one
  jitted, vmapped call per ``step``. Each environment may face its own red agent.
* ``CageGymEnv``: a single ``gymnasium.Env`` (no auto-reset), for SB3-style single-env code and for
  running a CybORG-trained agent unchanged.

Spaces mirror CybORG's ``ChallengeWrapper(agent_name='Blue')``
(``csle_cyborg/agents/wrappers/open_ai_gym_wrapper.py``: ``OpenAIGymWrapper.__init__``):
``Box(-1.0, 1.0, (52,), float32)`` observations and ``Discrete(145)`` actions, so a policy trained
on CybORG sees the same shapes, dtypes and action ids. Observations are returned as float32 (the
space's dtype; CybORG itself returns an int64 array of the same 0/1 values) and rewards as float64
``reward_tenths / 10``, which equals CybORG's ``round(reward, 1)`` exactly.

Auto-reset (``CageVectorEnv``): gymnasium >= 1.1 names three modes, read from
``metadata["autoreset_mode"]`` by its wrappers. The default is ``AutoresetMode.SAME_STEP``, which is
what the JAX env does natively: on the step that ends an episode, the returned observation already
belongs to the next episode and ``infos["final_obs"]`` holds the last observation of the finished
one. ``NEXT_STEP`` (gymnasium's own default) and ``DISABLED`` are emulated inside the same jitted
call. CAGE2 episodes only end by time limit, so ``terminations`` is always False and
``truncations`` is True every ``max_steps`` steps.

Speed: each ``step`` is one compiled call on one packed, donated buffer (``jaxcage.host_step``).
A process whose JAX work is only this host-side stepping (an SB3 / PyTorch loop) should call
``jaxcage.host_step.inline_cpu_runtime()`` first, before any JAX computation: XLA:CPU then runs
a step's thunks on one core instead of handing them between cores, which cuts a small call by
~60% (BENCHMARKS.md, "Host-side stepping"). It is process-wide (and pins the process's later
threads to one core), so jaxcage never makes that choice for you.

Importing this module registers gymnasium ids (``jaxcage/Cage2-BLine-v0``, ``-Meander-v0``,
``-Sleep-v0``) usable with ``gymnasium.make`` and ``gymnasium.make_vec``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from jaxcage.constants import NUM_BLUE_ACTIONS, OBS_SIZE
from jaxcage.env import CageEnv, make_params
from jaxcage.host_step import FlatLayout, PackedCall, key_from_data, key_to_data
from jaxcage.reward import MAX_PENALTY_TENTHS
from jaxcage.state import EnvParams, EnvState, init_state

__all__ = [
    "CageGymEnv",
    "CageVectorEnv",
    "cyborg_action_space",
    "cyborg_observation_space",
    "register_envs",
]

# Upper bound (exclusive) of the integer drawn from gymnasium's np_random to seed a JAX key when
# reset() gets no seed; 2**32 fits jax.random.key with or without x64.
_SEED_BOUND = 2**32

AgentSpec = str | int | Sequence[str | int]


def cyborg_observation_space() -> spaces.Box:
    """CybORG ChallengeWrapper's Blue observation space: ``Box(-1.0, 1.0, (52,), float32)``."""
    return spaces.Box(-1.0, 1.0, shape=(OBS_SIZE,), dtype=np.float32)


def cyborg_action_space() -> spaces.Discrete:
    """CybORG ChallengeWrapper's Blue action space: ``Discrete(145)``."""
    return spaces.Discrete(NUM_BLUE_ACTIONS)


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or int(seed) < 0:
        raise ValueError(f"seed must be a non-negative integer or None, got {seed!r}")
    return int(seed)


def _check_num_envs(num_envs: Any) -> int:
    if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)):
        raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
    if int(num_envs) < 1:
        raise ValueError(f"num_envs must be >= 1, got {num_envs}")
    return int(num_envs)


def _check_autoreset_mode(mode: Any) -> AutoresetMode:
    if isinstance(mode, AutoresetMode):
        return mode
    for candidate in AutoresetMode:
        if isinstance(mode, str) and mode.lower().replace("_", "") in (
            candidate.value.lower(),
            candidate.name.lower().replace("_", ""),
        ):
            return candidate
    raise ValueError(
        f"unknown autoreset_mode {mode!r}; expected one of {[m.name for m in AutoresetMode]}"
    )


def _per_env(value: AgentSpec, num_envs: int, what: str) -> list[str | int]:
    """A per-environment list from one name (broadcast) or a sequence of ``num_envs`` names."""
    if isinstance(value, (str, int, np.integer)):
        return [value] * num_envs
    values = list(value)
    if len(values) != num_envs:
        raise ValueError(
            f"{what} must be one name or a sequence of num_envs={num_envs} names, "
            f"got a sequence of length {len(values)}"
        )
    return values


def _stack_params(
    red: Sequence[str | int],
    green: Sequence[str | int],
    max_steps: int,
    params_kwargs: dict[str, Any] | None = None,
) -> tuple[EnvParams, bool]:
    """Validated params, batched along axis 0 only if the environments differ.

    Returns ``(params, batched)``. Shared params stay unbatched so that ``lax.switch`` over the red
    agent remains a real branch under ``vmap`` instead of evaluating all three policies.
    """
    kwargs = params_kwargs or {}
    per_env = [
        make_params(r, max_steps=max_steps, green_agent=g, **kwargs)
        for r, g in zip(red, green, strict=True)
    ]
    first = per_env[0]
    same = all(
        int(p.red_agent) == int(first.red_agent) and int(p.green_agent) == int(first.green_agent)
        for p in per_env
    )
    if same:
        return first, False
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *per_env), True


def _check_actions(actions: Any, num_envs: int) -> np.ndarray:
    """Validate a batch of blue action ids on the host; returns an int32 array of shape (N,)."""
    arr = np.asarray(actions)
    if arr.shape != (num_envs,):
        raise ValueError(f"actions must have shape ({num_envs},), got {arr.shape}")
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"actions must be integers (blue action ids), got dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() >= NUM_BLUE_ACTIONS):
        bad = arr[(arr < 0) | (arr >= NUM_BLUE_ACTIONS)]
        raise ValueError(
            f"blue action ids must be in 0..{NUM_BLUE_ACTIONS - 1}, got {bad[:8].tolist()}"
        )
    return arr.astype(np.int32)


def _select(mask: jax.Array, on_true: Any, on_false: Any) -> Any:
    """Per-leaf ``where`` for one (unbatched) environment."""
    return jax.tree.map(lambda a, b: jnp.where(mask, a, b), on_true, on_false)


# CageEnv is stateless, so one instance serves every adapter and compiled kernels can be shared.
_ENV = CageEnv()

# Layout of one step's result row (int16): the observation, then reward tenths, done, and (single
# env) the red action type or (vector env, SAME_STEP) the finished episode's last observation.
# int16, not int32, because the row is the one device-to-host copy of a step: at 8,192 envs it is
# 1.7 MB instead of 3.5 MB. Every entry fits: observations and flags are 0/1, red action types are
# small, and a step's penalty is at most jaxcage.reward.MAX_PENALTY_TENTHS (checked below).
_OBS = slice(0, OBS_SIZE)
_TENTHS = OBS_SIZE
_DONE = OBS_SIZE + 1
_EXTRA = OBS_SIZE + 2
if MAX_PENALTY_TENTHS >= 2**15:  # pragma: no cover - a guard on the int16 result row
    raise AssertionError(f"reward tenths {MAX_PENALTY_TENTHS} do not fit the int16 result row")


def _result_row(obs: jax.Array, tenths: jax.Array, done: jax.Array, extra: jax.Array) -> jax.Array:
    """One int16 row ``[obs (52), tenths, done, extra...]`` (batched along leading axes)."""
    scalars = [jnp.asarray(x, jnp.int16)[..., None] for x in (tenths, done)]
    extra = jnp.asarray(extra, jnp.int16)
    if extra.ndim == obs.ndim - 1:
        extra = extra[..., None]
    return jnp.concatenate([obs.astype(jnp.int16), *scalars, extra], axis=-1)


def _blank_states(num_envs: int) -> EnvState:
    """``num_envs`` initial states, to be overwritten by a full reset."""
    return jax.tree.map(lambda x: jnp.broadcast_to(x, (num_envs, *x.shape)), init_state())


def _signature(tree: Any) -> tuple[Any, ...]:
    """A hashable description of a pytree's structure, shapes and dtypes (a compile-cache key)."""
    leaves, treedef = jax.tree.flatten(tree)
    return (treedef, tuple((np.shape(x), np.dtype(getattr(x, "dtype", type(x)))) for x in leaves))


_KERNELS: dict[tuple[Any, ...], Any] = {}


def _cached(key: tuple[Any, ...], build: Callable[[], Any]) -> Any:
    """``build()`` once per ``key``: adapters of the same shapes share one compilation."""
    if key not in _KERNELS:
        _KERNELS[key] = build()
    return _KERNELS[key]


# Up to this many environments the vector env's batched state travels as one packed int32
# buffer (one argument and one result buffer per call instead of 29 of each: 8 envs 306 -> 234
# us per call on the 2-core VM); from ~128 envs on, the copy into that buffer costs more than
# the buffer handles it saves (256 envs: 764 packed against 573 us).
PACKED_MAX_ENVS = 64


def _vector_kernels(
    num_envs: int, params: EnvParams, params_batched: bool, mode: AutoresetMode, key_impl: Any
) -> tuple[FlatLayout, PackedCall, PackedCall, Any]:
    """Cached ``_build_vector_kernels``."""
    packed = num_envs <= PACKED_MAX_ENVS
    sig = ("vector", num_envs, params_batched, mode, str(key_impl), packed, _signature(params))
    return _cached(
        sig,
        lambda: _build_vector_kernels(num_envs, params, params_batched, mode, key_impl, packed),
    )


def _build_vector_kernels(
    num_envs: int,
    params: EnvParams,
    params_batched: bool,
    mode: AutoresetMode,
    key_impl: Any,
    packed: bool,
) -> tuple[FlatLayout, PackedCall, PackedCall, Any]:
    """Packed batch kernels for ``CageVectorEnv``, and the blank batched state they carry.

    The carry is the key data (one int32 buffer) and the batched state, all donated. With
    ``packed`` (small batches, ``PACKED_MAX_ENVS``) the state is one ``(num_envs, size)`` int32
    buffer (``FlatLayout``), unpacked and repacked inside the program; otherwise its 29 leaves
    travel as they are (at large batches the copy into one buffer would cost more than the buffer
    handles it saves; BENCHMARKS.md). ``reset(carry, params, mask) -> (carry, obs)`` and
    ``step(carry, actions, params, pending) -> (carry, result)``, ``result`` one int16 array,
    ``(num_envs, 106)`` in SAME_STEP mode (with the final observations) and ``(num_envs, 55)``
    otherwise (see ``_result_row``). Both advance the key inside the program.
    """
    state_layout = FlatLayout(init_state())

    def load(held: Any) -> EnvState:
        return state_layout.unpack(held) if packed else held

    def store(state: EnvState) -> Any:
        return state_layout.pack(state, batch_dims=1) if packed else state

    env = _ENV
    p_axis = 0 if params_batched else None
    like = jax.random.key(0, impl=key_impl)
    key_layout = FlatLayout(key_to_data(like))

    def reset_one(
        key: jax.Array, state: EnvState, params: EnvParams, mask: jax.Array
    ) -> tuple[jax.Array, EnvState]:
        obs, fresh = env.reset(key, params)
        # Observations of environments that are not reset are not read by the caller.
        return obs, _select(mask, fresh, state)

    def reset(
        carry: tuple[jax.Array, EnvState], params: EnvParams, mask: jax.Array
    ) -> tuple[tuple[jax.Array, EnvState], jax.Array]:
        key, state = key_from_data(key_layout.unpack(carry[0]), like), load(carry[1])
        key, key_reset = jax.random.split(key)
        keys = jax.random.split(key_reset, num_envs)
        obs, state = jax.vmap(reset_one, in_axes=(0, 0, p_axis, 0))(keys, state, params, mask)
        return (key_layout.pack(key_to_data(key)), store(state)), obs.astype(jnp.int32)

    def step_one(
        key: jax.Array, state: EnvState, action: jax.Array, params: EnvParams, pending: jax.Array
    ) -> tuple[jax.Array, EnvState, jax.Array, jax.Array, jax.Array]:
        if mode == AutoresetMode.SAME_STEP:
            obs, state, _, done, info = env.step(key, state, action, params)
            return obs, state, info["reward_tenths"], done, info["final_obs"]
        obs, next_state, _, done, info = env.step_env(key, state, action, params)
        tenths = info["reward_tenths"]
        if mode == AutoresetMode.NEXT_STEP:
            # The step after an episode's end only resets it: action ignored, reward 0, not done.
            reset_obs, reset_state = env.reset(key, params)
            next_state = _select(pending, reset_state, next_state)
            obs = jnp.where(pending, reset_obs, obs)
            tenths = jnp.where(pending, jnp.zeros_like(tenths), tenths)
            done = jnp.logical_and(done, jnp.logical_not(pending))
        return obs, next_state, tenths, done, obs

    def step(
        carry: tuple[jax.Array, EnvState],
        actions: jax.Array,
        params: EnvParams,
        pending: jax.Array,
    ) -> tuple[tuple[jax.Array, EnvState], jax.Array]:
        key, state = key_from_data(key_layout.unpack(carry[0]), like), load(carry[1])
        key, key_step = jax.random.split(key)
        keys = jax.random.split(key_step, num_envs)
        obs, state, tenths, done, final_obs = jax.vmap(step_one, in_axes=(0, 0, 0, p_axis, 0))(
            keys, state, actions, params, pending
        )
        extra = final_obs if mode == AutoresetMode.SAME_STEP else jnp.zeros_like(done)
        result = _result_row(obs, tenths, done, extra)
        return (key_layout.pack(key_to_data(key)), store(state)), result

    blank = _blank_states(num_envs)
    if packed:
        blank = np.asarray(jax.jit(store)(blank))
    carry = (np.zeros(key_layout.size, np.int32), blank)
    mask = np.ones(num_envs, dtype=bool)
    actions = np.zeros(num_envs, dtype=np.int32)
    return (
        key_layout,
        PackedCall(reset, carry, params, mask),
        PackedCall(step, carry, actions, params, mask),
        blank,
    )


class CageVectorEnv(VectorEnv):
    """``num_envs`` CAGE2 environments behind gymnasium's ``VectorEnv`` API, stepped in one call.

    Example::

        envs = CageVectorEnv(num_envs=64, red_agent="b_line")
        obs, infos = envs.reset(seed=0)                    # (64, 52) float32
        obs, rew, term, trunc, infos = envs.step(envs.action_space.sample())

    Args:
        num_envs: number of environments (>= 1).
        red_agent: ``"b_line"``, ``"meander"`` or ``"sleep"`` for all environments, or a sequence
            of ``num_envs`` names for a per-environment mixture.
        max_steps: episode length (CybORG's official lengths are 30, 50 and 100).
        green_agent: ``"sleep"`` (the evaluation default) or ``"random"``, or one per environment.
        autoreset_mode: ``AutoresetMode.SAME_STEP`` (default, native), ``NEXT_STEP`` or
            ``DISABLED`` (then finished environments must be reset with
            ``reset(options={"reset_mask": mask})``).

    Raises:
        ValueError: bad ``num_envs``, unknown agent name, sequence of the wrong length, bad
            ``max_steps`` or ``autoreset_mode`` (all raised before anything compiles).
    """

    def __init__(
        self,
        num_envs: int = 1,
        red_agent: AgentSpec = "b_line",
        *,
        max_steps: int = 100,
        green_agent: AgentSpec = "sleep",
        autoreset_mode: AutoresetMode | str = AutoresetMode.SAME_STEP,
        **params_kwargs: Any,
    ) -> None:
        self.num_envs = _check_num_envs(num_envs)
        self.autoreset_mode = _check_autoreset_mode(autoreset_mode)
        self.metadata = {"autoreset_mode": self.autoreset_mode}
        self.params, self.params_batched = _stack_params(
            _per_env(red_agent, self.num_envs, "red_agent"),
            _per_env(green_agent, self.num_envs, "green_agent"),
            max_steps,
            params_kwargs,
        )
        self.env = _ENV
        self.single_observation_space = cyborg_observation_space()
        self.single_action_space = cyborg_action_space()
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._key_like = jax.random.key(0)
        self._key_layout, self._reset_fn, self._step_fn, self._blank = _vector_kernels(
            self.num_envs,
            self.params,
            self.params_batched,
            self.autoreset_mode,
            jax.random.key_impl(self._key_like),
        )
        # (key data, batched state, packed for small batches): buffers donated to every call.
        self._carry: tuple[jax.Array, Any] | None = None
        self._pending = np.zeros(self.num_envs, dtype=bool)  # NEXT_STEP: reset on next step()
        self._obs: np.ndarray | None = None  # last returned observation, for partial resets

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset all environments (or those in ``options["reset_mask"]``).

        ``seed`` restarts the key stream, so the same seed and actions give the same trajectory.
        Without a seed the stream continues (or, on the first reset, is seeded from OS entropy).
        With ``options={"reset_mask": mask}`` (a bool array of shape ``(num_envs,)``) only the
        masked environments are reset; the other rows of the returned observation repeat their
        last observation.
        """
        if seed is not None:
            seed = _check_seed(seed)
        super().reset(seed=seed)
        mask = np.ones(self.num_envs, dtype=bool)
        if options and "reset_mask" in options:
            mask = np.asarray(options["reset_mask"])
            if mask.shape != (self.num_envs,) or mask.dtype != np.bool_:
                raise ValueError(
                    f"options['reset_mask'] must be a bool array of shape ({self.num_envs},), "
                    f"got {mask.dtype} {mask.shape}"
                )
            if self._carry is None and not mask.all():
                raise ValueError("the first reset() must reset every environment")
        if seed is not None or self._carry is None:
            if seed is None:
                seed = int(self.np_random.integers(_SEED_BOUND))
            key_data = np.asarray(key_to_data(jax.random.key(seed, impl=self._key_impl)))
            states = self._carry[1] if self._carry is not None else self._blank_state()
            self._carry = (jnp.asarray(key_data.view(np.int32)), states)
        self._carry, obs = self._reset_fn(self._carry, self.params, mask)
        self._pending = np.logical_and(self._pending, np.logical_not(mask))
        obs_np = np.asarray(obs).astype(np.float32)
        if self._obs is not None:
            obs_np = np.where(mask[:, None], obs_np, self._obs)
        self._obs = obs_np
        return obs_np.copy(), {}

    def step(
        self, actions: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every environment with one blue action id each.

        Args:
            actions: integer array-like of shape ``(num_envs,)`` with values in ``0..144``.

        Returns:
            ``(obs (N, 52) float32, rewards (N,) float64, terminations (N,) bool,
            truncations (N,) bool, infos)``. In ``SAME_STEP`` mode, when some episode ended,
            ``infos["final_obs"]`` is an ``(N, 52)`` float32 array (rows of unfinished
            environments equal ``obs``) with the bool mask ``infos["_final_obs"]``.

        Raises:
            ValueError: wrong shape, non-integer dtype or out-of-range action id.
            RuntimeError: ``step`` before ``reset``.
        """
        if self._carry is None:
            raise RuntimeError("call reset() before step()")
        acts = _check_actions(actions, self.num_envs)
        self._carry, result = self._step_fn(self._carry, acts, self.params, self._pending)
        res = np.asarray(result)
        obs_np = res[:, _OBS].astype(np.float32)
        rewards = res[:, _TENTHS].astype(np.float64) / 10.0
        truncations = res[:, _DONE] != 0
        terminations = np.zeros(self.num_envs, dtype=bool)
        infos: dict[str, Any] = {}
        if self.autoreset_mode == AutoresetMode.SAME_STEP and truncations.any():
            infos["final_obs"] = res[:, _EXTRA:].astype(np.float32)
            infos["_final_obs"] = truncations.copy()
        if self.autoreset_mode == AutoresetMode.NEXT_STEP:
            self._pending = truncations.copy()
        self._obs = obs_np
        return obs_np.copy(), rewards, terminations, truncations, infos

    @property
    def _key_impl(self) -> Any:
        return jax.random.key_impl(self._key_like)

    def _blank_state(self) -> Any:
        """A batched state (as the kernels carry it) to be overwritten by the first full reset;
        a fresh buffer, since every call donates its carry."""
        return jax.tree.map(jnp.array, self._blank)

    def close_extras(self, **kwargs: Any) -> None:
        """Drop the device state (``reset`` starts afresh)."""
        del kwargs
        self._carry = None
        self._obs = None

    def __repr__(self) -> str:
        return f"CageVectorEnv(num_envs={self.num_envs}, autoreset_mode={self.autoreset_mode.name})"


def _single_kernels(params: EnvParams, key_impl: Any) -> tuple[FlatLayout, PackedCall, PackedCall]:
    """Cached ``_build_single_kernels``."""
    sig = ("single", str(key_impl), _signature(params))
    return _cached(sig, lambda: _build_single_kernels(params, key_impl))


def _build_single_kernels(
    params: EnvParams, key_impl: Any
) -> tuple[FlatLayout, PackedCall, PackedCall]:
    """Packed kernels for ``CageGymEnv``; the carry is one int32 buffer (key data, state, params).

    ``reset(carry) -> (carry, obs)`` and ``step(carry, action) -> (carry, result)``, ``result``
    the int16 row ``[obs (52), reward tenths, done, red action type]``. The key is split inside
    (``key, key_step = split(key)`` per call, as ever), so trajectories are those of
    ``CageEnv.reset`` / ``CageEnv.step_env`` driven with that key stream.
    """
    like = jax.random.key(0, impl=key_impl)
    layout = FlatLayout((key_to_data(like), init_state(), params))

    def unpack(carry: jax.Array) -> tuple[jax.Array, EnvState, EnvParams]:
        key_data, state, env_params = layout.unpack(carry)
        return key_from_data(key_data, like), state, env_params

    def reset(carry: jax.Array) -> tuple[jax.Array, jax.Array]:
        key, _, env_params = unpack(carry)
        key, key_reset = jax.random.split(key)
        obs, state = _ENV.reset(key_reset, env_params)
        return layout.pack((key_to_data(key), state, env_params)), obs.astype(jnp.int32)

    def step(carry: jax.Array, action: jax.Array) -> tuple[jax.Array, jax.Array]:
        key, state, env_params = unpack(carry)
        key, key_step = jax.random.split(key)
        obs, state, _, done, info = _ENV.step_env(key_step, state, action, env_params)
        result = _result_row(obs, info["reward_tenths"], done, info["red_action"])
        return layout.pack((key_to_data(key), state, env_params)), result

    carry = np.zeros(layout.size, np.int32)
    return layout, PackedCall(reset, carry), PackedCall(step, carry, np.zeros((), np.int32))


class CageGymEnv(gymnasium.Env[np.ndarray, np.int64]):
    """One CAGE2 environment behind gymnasium's ``Env`` API (no auto-reset).

    ``step`` returns ``truncated=True`` once ``max_steps`` steps were taken; call ``reset`` then
    (stepping on continues the same episode past its limit, as CybORG's ChallengeWrapper does).
    ``info`` carries ``"reward_tenths"`` (int) and ``"red_action"`` (``constants.RedActionType``).

    Args:
        red_agent: ``"b_line"``, ``"meander"`` or ``"sleep"``.
        max_steps: episode length.
        green_agent: ``"sleep"`` or ``"random"``.
        render_mode: only ``None`` is supported.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(
        self,
        red_agent: str | int = "b_line",
        *,
        max_steps: int = 100,
        green_agent: str | int = "sleep",
        render_mode: str | None = None,
        **params_kwargs: Any,
    ) -> None:
        if render_mode is not None:
            raise ValueError(f"render_mode must be None (no rendering), got {render_mode!r}")
        self.render_mode = render_mode
        self.params = make_params(
            red_agent, max_steps=max_steps, green_agent=green_agent, **params_kwargs
        )
        self.env = _ENV
        self.observation_space = cyborg_observation_space()
        self.action_space = cyborg_action_space()
        self._key_impl = jax.random.key_impl(jax.random.key(0))
        self._layout, self._reset_fn, self._step_fn = _single_kernels(self.params, self._key_impl)
        self._pack = jax.jit(self._layout.pack)
        # (key data, state, params) in one int32 device buffer, donated to every call.
        self._carry: jax.Array | None = None

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode. ``seed`` restarts the key stream; ``options`` is ignored."""
        del options
        if seed is not None:
            seed = _check_seed(seed)
        super().reset(seed=seed)
        if seed is not None or self._carry is None:
            if seed is None:
                seed = int(self.np_random.integers(_SEED_BOUND))
            key = jax.random.key(seed, impl=self._key_impl)
            self._carry = self._pack((key_to_data(key), init_state(), self.params))
        self._carry, obs = self._reset_fn(self._carry)
        return np.asarray(obs).astype(np.float32), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """One step for blue action id ``action`` (0..144).

        Raises:
            ValueError: non-integer or out-of-range action.
            RuntimeError: ``step`` before ``reset``.
        """
        if self._carry is None:
            raise RuntimeError("call reset() before step()")
        arr = np.asarray(action)
        if arr.shape not in ((), (1,)):
            raise ValueError(f"action must be a single blue action id, got shape {arr.shape}")
        act = _check_actions(arr.reshape(1), 1)
        self._carry, result = self._step_fn(self._carry, act.reshape(()))
        res = np.asarray(result)
        tenths = int(res[_TENTHS])
        info = {"reward_tenths": tenths, "red_action": int(res[_EXTRA])}
        return res[_OBS].astype(np.float32), tenths / 10.0, False, bool(res[_DONE]), info


_REGISTERED_IDS: dict[str, str] = {
    "jaxcage/Cage2-BLine-v0": "b_line",
    "jaxcage/Cage2-Meander-v0": "meander",
    "jaxcage/Cage2-Sleep-v0": "sleep",
}


def register_envs() -> None:
    """Register the gymnasium ids (idempotent; done on import of this module).

    ``gymnasium.make("jaxcage/Cage2-BLine-v0")`` builds a ``CageGymEnv`` and
    ``gymnasium.make_vec("jaxcage/Cage2-BLine-v0", num_envs=N)`` a ``CageVectorEnv``; keyword
    arguments (``max_steps``, ``green_agent``, ...) are passed through.
    """
    for env_id, red in _REGISTERED_IDS.items():
        if env_id in gymnasium.registry:
            continue
        gymnasium.register(
            id=env_id,
            entry_point="jaxcage.gym_adapter:CageGymEnv",
            vector_entry_point="jaxcage.gym_adapter:CageVectorEnv",
            kwargs={"red_agent": red},
        )


register_envs()
