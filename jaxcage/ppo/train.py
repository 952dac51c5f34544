"""PPO trainer compiled end to end: rollout + GAE + K epochs of minibatch updates = one XLA program.

Three layers, PureJaxRL style:

* ``make_update(cfg)`` -> ``update(runner) -> (runner, metrics)``: one PPO update, pure.
* ``make_train(cfg)`` -> ``train(key) -> (runner, metrics)``: init + ``lax.scan`` over every update;
  ``jax.jit(jax.vmap(make_train(cfg)))(keys)`` trains several seeds in one program.
* ``train(cfg, out_dir=...)``: the host loop used by the CLI. It runs a compiled *chunk* of
  ``cfg.updates_per_chunk`` updates (scan, vmapped over seeds) per call, then writes the chunk's
  metrics (CSV/TensorBoard), prints progress and checkpoints, without recompiling. Chunk
  boundaries are multiples of ``chunk_size(cfg)`` counted from update 0, so a resumed run executes
  exactly the same compiled programs on exactly the same states as an uninterrupted one.

The pure layers pick no device. The host loop places the run with ``jaxcage.sharding``: seeds
split over the devices, or (when they don't divide) one policy's envs and minibatches split with
the gradient all-reduced every minibatch step; the compiled program is the one a single device
runs on the global arrays, so the device count changes speed, never semantics.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from flax.training.train_state import TrainState

from jaxcage import sharding as shd
from jaxcage.constants import NUM_BLUE_ACTIONS
from jaxcage.env import make as make_cage_env
from jaxcage.ppo import checkpoint as ckpt
from jaxcage.ppo import logging as plog
from jaxcage.ppo.config import RED_AGENTS, PPOConfig, without_host_fields
from jaxcage.ppo.features import input_size
from jaxcage.ppo.gae import compute_gae
from jaxcage.ppo.loss import Minibatch, ppo_loss
from jaxcage.ppo.networks import ActorCritic, init_each, make_network
from jaxcage.ppo.rollout import EnvBatch, Transition, collect, init_env_batch

NUM_ACTIONS = NUM_BLUE_ACTIONS

# (env, base_params): the environment object and params whose red_agent is overwritten per env.
EnvSpec = tuple[Any, Any]
Metrics = dict[str, jax.Array]


@struct.dataclass
class RunnerState:
    """Everything one seed's training carries from one update to the next."""

    train_state: TrainState  # network params + Adam state (+ step count driving the LR schedule)
    envs: EnvBatch
    key: jax.Array  # typed PRNG key
    update: jax.Array  # () int32 updates done so far


def make_env(cfg: PPOConfig, env: EnvSpec | None = None) -> EnvSpec:
    """The training environment: ``jaxcage.make`` from the config unless one is injected (tests)."""
    if env is None:
        return make_cage_env(
            cfg.red_agents[0],
            max_steps=cfg.max_steps,
            green_agent=cfg.green_agent,
            rules=cfg.rules,
        )
    e, params = env
    return e, params.replace(max_steps=jnp.int32(cfg.max_steps))


def _red_tables(cfg: PPOConfig) -> tuple[jax.Array, jax.Array]:
    ids = jnp.array([RED_AGENTS.index(r) for r in cfg.red_agents], dtype=jnp.int32)
    return ids, jnp.array(cfg.red_probs, dtype=jnp.float32)


def make_network_for(cfg: PPOConfig) -> ActorCritic:
    return make_network(NUM_ACTIONS, cfg.hidden_sizes, cfg.activation, cfg.features)


def make_optimizer(cfg: PPOConfig) -> optax.GradientTransformation:
    """Adam (eps 1e-5, as in the PPO reference code) after global-norm clipping; the learning rate
    decays linearly to 0 over all minibatch steps when ``anneal_lr``."""
    if cfg.anneal_lr:
        steps = cfg.num_updates * cfg.update_epochs * cfg.num_minibatches
        lr: Any = optax.linear_schedule(cfg.lr, 0.0, steps)
    else:
        lr = cfg.lr
    return optax.chain(optax.clip_by_global_norm(cfg.max_grad_norm), optax.adam(lr, eps=1e-5))


def current_lr(cfg: PPOConfig, step: jax.Array | int) -> jax.Array:
    """The learning rate Adam uses at optimizer step ``step`` (for the metrics)."""
    if cfg.anneal_lr:
        steps = cfg.num_updates * cfg.update_epochs * cfg.num_minibatches
        return jnp.asarray(optax.linear_schedule(cfg.lr, 0.0, steps)(step))
    return jnp.float32(cfg.lr)


def make_init(cfg: PPOConfig, env: EnvSpec | None = None) -> Callable[[jax.Array], RunnerState]:
    """``init(key) -> RunnerState`` for one seed (pure; ``networks.init_each`` over seed keys)."""
    env_obj, base_params = make_env(cfg, env)
    network = make_network_for(cfg)
    red_ids, red_probs = _red_tables(cfg)

    def init(key: jax.Array) -> RunnerState:
        key_net, key_env, key_run = jax.random.split(key, 3)
        params = network.init(key_net, jnp.zeros((1, input_size(cfg.features)), jnp.float32))
        ts = TrainState.create(apply_fn=network.apply, params=params, tx=make_optimizer(cfg))
        envs = init_env_batch(key_env, env_obj, base_params, cfg.num_envs, red_ids, red_probs)
        return RunnerState(train_state=ts, envs=envs, key=key_run, update=jnp.int32(0))

    return init


def shuffled_indices(key: jax.Array, n: int) -> jax.Array:
    """A random ordering of ``0..n-1`` from one sort of ``n`` 32-bit keys.

    Each key packs random bits above the (randomly relabelled) index, so the keys are distinct and
    a plain single-array sort gives the permutation: XLA's CPU sort is ~5x faster on one uint32
    array than on a (keys, indices) pair (1.1 vs 5.3 ms for a 25,600-sample batch, paid every
    epoch), and ~10x faster than ``jax.random.permutation``'s two sorts. With ``b`` index bits,
    ``32 - b`` bits are random: elements with equal random bits (for the default batch, ~10% of
    them) come out in an order fixed by the relabelling (index XOR a random mask), which only
    matters for those in the bucket of equal random bits that straddles a minibatch boundary
    (about ``n / 2^(32 - b)`` elements per boundary: under 0.1% of the batch up to 2^20 samples).
    Larger batches (fewer than 12 random bits) sort a (keys, indices) pair instead.
    """
    index_bits = max(1, (n - 1).bit_length())
    if index_bits > 20:
        bits = jax.random.bits(key, (n,), dtype=jnp.uint32)
        return jax.lax.sort((bits, jax.lax.iota(jnp.int32, n)), num_keys=1, is_stable=False)[1]
    key_bits, key_mask = jax.random.split(key)
    low = jnp.uint32((1 << index_bits) - 1)
    mask = jax.random.bits(key_mask, (), dtype=jnp.uint32) & low
    labels = jax.lax.iota(jnp.uint32, n) ^ mask  # a bijection of the index bits
    keys = (jax.random.bits(key_bits, (n,), dtype=jnp.uint32) & ~low) | labels
    return ((jnp.sort(keys) & low) ^ mask).astype(jnp.int32)


def make_rollout(
    cfg: PPOConfig, env: EnvSpec | None = None
) -> Callable[[jax.Array, Any, EnvBatch], tuple[EnvBatch, Transition, jax.Array, jax.Array]]:
    """``rollout(key, params, envs) -> (envs, traj, advantages, returns)``: the data half of an
    update (``num_steps`` steps of every env with the stochastic policy, then GAE)."""
    env_obj, _ = make_env(cfg, env)
    network = make_network_for(cfg)
    red_ids, red_probs = _red_tables(cfg)

    def rollout(
        key: jax.Array, params: Any, envs: EnvBatch
    ) -> tuple[EnvBatch, Transition, jax.Array, jax.Array]:
        envs, traj = collect(
            key,
            env_obj,
            network.apply,
            params,
            envs,
            num_steps=cfg.num_steps,
            features=cfg.features,
            reward_scale=cfg.reward_scale,
            treat_truncation_as_terminal=cfg.treat_truncation_as_terminal,
            red_ids=red_ids,
            red_probs=red_probs,
        )
        advantages, returns = compute_gae(
            traj.rewards,
            traj.values,
            traj.next_values,
            traj.dones,
            traj.terminals,
            cfg.gamma,
            cfg.gae_lambda,
        )
        return envs, traj, advantages, returns

    return rollout


def make_update(
    cfg: PPOConfig, env: EnvSpec | None = None, placement: shd.Placement | None = None
) -> Callable[[RunnerState], tuple[RunnerState, Metrics]]:
    """``update(runner) -> (runner, metrics)``: one rollout and K epochs of minibatch updates.

    ``placement`` (when one policy is split over devices) pins where each epoch's minibatches live
    and, with ``cfg.minibatch_shuffle == "local"``, makes each device shuffle its own envs' samples
    (``shuffle_groups``); with the default global shuffle it changes where the work runs, never
    its result."""
    rollout = make_rollout(cfg, env)
    network = make_network_for(cfg)
    loss_coefs = {
        "clip_eps": cfg.clip_eps,
        "vf_coef": cfg.vf_coef,
        "ent_coef": cfg.ent_coef,
        "clip_value_loss": cfg.clip_value_loss,
        "normalize_advantages": cfg.normalize_advantages,
    }
    grad_fn = jax.value_and_grad(ppo_loss, has_aux=True)
    groups = shuffle_groups(cfg, placement)
    pin = placement.constrain if placement is not None else (lambda tree, axis: tree)

    def minibatch_step(ts: TrainState, mb: Minibatch) -> tuple[TrainState, Metrics]:
        (loss, aux), grads = grad_fn(ts.params, network.apply, mb, **loss_coefs)
        return ts.apply_gradients(grads=grads), {"loss": loss, **aux}

    def epoch(ts: TrainState, xs: tuple[jax.Array, Minibatch]) -> tuple[TrainState, Metrics]:
        key, batch = xs
        m, size = cfg.num_minibatches, cfg.minibatch_size
        if groups == 1:
            perm = shuffled_indices(key, cfg.batch_size)
            mbs = jax.tree.map(lambda x: x[perm].reshape(m, size, *x.shape[1:]), batch)
        else:
            # batch leaves are (groups, samples of the group's envs, ...): each group (device)
            # permutes its own samples and gives 1/groups of every minibatch, so no sample moves.
            keys = jax.random.split(key, groups)
            perms = jax.vmap(lambda k: shuffled_indices(k, cfg.batch_size // groups))(keys)

            def gather(x: jax.Array) -> jax.Array:
                x = jax.vmap(lambda xg, p: xg[p])(x, perms)
                x = x.reshape(groups, m, size // groups, *x.shape[2:]).swapaxes(0, 1)
                return x.reshape(m, size, *x.shape[3:])

            mbs = jax.tree.map(gather, batch)
        return jax.lax.scan(minibatch_step, ts, pin(mbs, 1))

    def update(runner: RunnerState) -> tuple[RunnerState, Metrics]:
        key, key_roll, key_epochs = jax.random.split(runner.key, 3)
        ts = runner.train_state
        envs, traj, advantages, returns = rollout(key_roll, ts.params, runner.envs)
        flat = Minibatch(
            inputs=traj.inputs,
            actions=traj.actions,
            log_probs=traj.log_probs,
            values=traj.values,
            advantages=advantages,
            returns=returns,
        )
        if groups == 1:
            flat = jax.tree.map(lambda x: x.reshape(cfg.batch_size, *x.shape[2:]), flat)
        else:  # (T, N, ...) -> (groups, T * N / groups, ...), each group a device's envs
            flat = jax.tree.map(
                lambda x: (
                    x.reshape(x.shape[0], groups, -1, *x.shape[2:])
                    .swapaxes(0, 1)
                    .reshape(groups, -1, *x.shape[2:])
                ),
                flat,
            )
            flat = pin(flat, 0)
        lr = current_lr(cfg, ts.step)
        ts, aux = jax.lax.scan(
            lambda t, k: epoch(t, (k, flat)), ts, jax.random.split(key_epochs, cfg.update_epochs)
        )
        metrics = {k: v.mean() for k, v in aux.items()}
        metrics.update(_rollout_metrics(cfg, traj, returns))
        metrics["lr"] = jnp.asarray(lr, jnp.float32)
        runner = RunnerState(train_state=ts, envs=envs, key=key, update=runner.update + 1)
        return runner, metrics

    return update


def shuffle_groups(cfg: PPOConfig, placement: shd.Placement | None) -> int:
    """How many groups shuffle their samples separately: the device count for a local shuffle of
    one policy split over devices, else 1 (one permutation of the whole batch)."""
    if placement is None or placement.layout != "envs" or cfg.minibatch_shuffle != "local":
        return 1
    return placement.num_devices


def _rollout_metrics(cfg: PPOConfig, traj: Any, returns: jax.Array) -> Metrics:
    """Episode statistics of the rollout (NaN when no episode ended in it) and critic quality."""
    done = traj.dones
    n = done.sum()
    ep = traj.episode_returns
    nan = jnp.float32(jnp.nan)
    out = {
        "episodes": n.astype(jnp.int32),
        "return_mean": jnp.where(n > 0, jnp.where(done, ep, 0.0).sum() / jnp.maximum(n, 1), nan),
        "return_min": jnp.where(n > 0, jnp.where(done, ep, jnp.inf).min(), nan),
        "return_max": jnp.where(n > 0, jnp.where(done, ep, -jnp.inf).max(), nan),
        "step_reward": traj.rewards.mean() / jnp.float32(cfg.reward_scale),
    }
    if len(cfg.red_agents) > 1:
        for r in cfg.red_agents:
            m = done & (traj.red_agents == RED_AGENTS.index(r))
            k = m.sum()
            out[f"return_{r}"] = jnp.where(
                k > 0, jnp.where(m, ep, 0.0).sum() / jnp.maximum(k, 1), nan
            )
    var_ret = returns.var()
    out["explained_variance"] = jnp.where(
        var_ret > 0, 1.0 - (returns - traj.values).var() / var_ret, nan
    )
    return out


def make_chunk(
    cfg: PPOConfig,
    num_updates: int,
    env: EnvSpec | None = None,
    placement: shd.Placement | None = None,
) -> Callable[[RunnerState], tuple[RunnerState, Metrics]]:
    """``chunk(runner) -> (runner, metrics with a leading (num_updates,) axis)`` (one seed)."""
    update = make_update(cfg, env, placement)

    def chunk(runner: RunnerState) -> tuple[RunnerState, Metrics]:
        return jax.lax.scan(lambda r, _: update(r), runner, None, length=num_updates)

    return chunk


def make_train(
    cfg: PPOConfig, env: EnvSpec | None = None
) -> Callable[[jax.Array], tuple[RunnerState, Metrics]]:
    """``train(key) -> (final runner, metrics (num_updates,))``: the whole run as one pure function.

    ``jax.jit(jax.vmap(make_train(cfg)))(seed_keys(cfg))`` trains ``cfg.num_seeds`` seeds at once.
    """
    init = make_init(cfg, env)
    chunk = make_chunk(cfg, cfg.num_updates, env)

    def train(key: jax.Array) -> tuple[RunnerState, Metrics]:
        return chunk(init(key))

    return train


def chunk_size(cfg: PPOConfig) -> int:
    """Updates per compiled call: ``cfg.updates_per_chunk``, moved to a nearby divisor of
    ``num_updates`` (within a factor 2) when there is one, so a shorter last chunk does not cost
    a second compilation. A pure function of the config, so resumed runs chunk identically."""
    k, n = min(cfg.updates_per_chunk, cfg.num_updates), cfg.num_updates
    divisors = [d for d in range(max(1, k // 2), min(n, 2 * k) + 1) if n % d == 0]
    return min(divisors, key=lambda d: (abs(d - k), -d)) if divisors else k


def seed_keys(cfg: PPOConfig) -> jax.Array:
    """One typed key per seed, derived from ``cfg.seed``."""
    return jax.random.split(jax.random.key(cfg.seed), cfg.num_seeds)


# --------------------------------------------------------------------------------------------
# Host loop
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class TrainResult:
    """What ``train`` returns.

    Attributes:
        config: the run's config.
        params: network params, every leaf with a leading ``(num_seeds,)`` axis.
        metrics: per-update metrics, each a ``(num_seeds, num_updates)`` array (``update``,
            ``env_steps``, ``wall_time``, ``steps_per_sec`` are host-side columns).
        wall_time: seconds for the whole run (compilation included; summed over resumes).
        compile_time: seconds spent compiling (this process).
        env_steps: environment steps taken, summed over seeds.
        out_dir: run directory, if any.
        num_devices: devices the (last session of the) run used.
        num_processes: processes the (last session of the) run used.
    """

    config: PPOConfig
    params: Any
    metrics: dict[str, np.ndarray]
    wall_time: float
    compile_time: float
    env_steps: int
    out_dir: Path | None = None
    num_devices: int = 1
    num_processes: int = 1

    def seed_params(self, index: int) -> Any:
        """The params of one seed."""
        return jax.tree.map(lambda x: x[index], self.params)

    def best_seed(self, fraction: float = 0.1) -> int:
        """Seed with the best mean training return over the last ``fraction`` of updates.

        Uses training metrics only (no evaluation episodes), so choosing it does not bias an
        evaluation of the chosen seed.
        """
        ret = self.metrics["return_mean"]
        k = max(1, int(math.ceil(ret.shape[1] * fraction)))
        tail = ret[:, -k:]
        score = np.array([np.nanmean(r) if np.isfinite(r).any() else -np.inf for r in tail])
        return int(np.argmax(score))


def place(cfg: PPOConfig) -> shd.Placement:
    """Start ``jax.distributed`` if the config (or a detected cluster) asks for it, then choose
    and validate where the run's arrays live (before anything is compiled)."""
    shd.initialize(cfg.coordinator, cfg.num_processes, cfg.process_id)
    return shd.plan(
        num_seeds=cfg.num_seeds,
        num_envs=cfg.num_envs,
        minibatch_size=cfg.minibatch_size,
        num_devices=cfg.num_devices,
    )


def runner_shardings(placement: shd.Placement, runner: Any) -> Any:
    """A ``RunnerState``-shaped tree of shardings: envs split by seed or env, the rest by seed
    (seeds layout) or replicated (envs layout: one policy's params and Adam state everywhere)."""
    seeds, envs = placement.seeds_sharding(), placement.envs_sharding()
    return runner.replace(
        train_state=jax.tree.map(lambda _: seeds, runner.train_state),
        envs=jax.tree.map(lambda _: envs, runner.envs),
        key=seeds,
        update=seeds,
    )


@dataclasses.dataclass(frozen=True)
class PlacedInit:
    """``init() -> runner``: every seed's initial state, created in place on the mesh (each
    process computes its own blocks; no host array is transferred).

    ``template`` (shapes only) is the structure every runner of this program has: checkpoints are
    restored into it, so a restored runner fits the programs compiled for a fresh one (the tree
    carries the optimiser's functions, which differ between traces)."""

    template: Any
    program: Any

    def __call__(self) -> RunnerState:
        return jax.tree.unflatten(jax.tree.structure(self.template), self.program())


def make_placed_init(
    cfg: PPOConfig, placement: shd.Placement, env: EnvSpec | None = None
) -> PlacedInit:
    """The placed initial state of a run (see ``PlacedInit``)."""
    one = make_init(cfg, env)
    init = functools.partial(init_each, one)  # not vmap: batched QR can deadlock XLA:CPU
    template = jax.eval_shape(lambda: init(seed_keys(cfg)))
    # Flat leaves out: shardings as a list need no tree whose functions match the trace's.
    program = jax.jit(
        lambda: jax.tree.leaves(init(seed_keys(cfg))),
        out_shardings=jax.tree.leaves(runner_shardings(placement, template)),
    )
    return PlacedInit(template=template, program=program)


def compile_chunk(
    cfg: PPOConfig,
    placement: shd.Placement,
    num_updates: int,
    runner: RunnerState,
    env: EnvSpec | None = None,
) -> Any:
    """The compiled, seed-vmapped chunk of ``num_updates`` updates for ``runner``'s placement
    (runner donated; metrics replicated, so every process can read them)."""
    shardings = runner_shardings(placement, runner)
    chunk = make_chunk(cfg, num_updates, env, placement)
    return (
        jax.jit(
            jax.vmap(chunk),
            in_shardings=(shardings,),
            out_shardings=(shardings, placement.replicated),
            donate_argnums=0,
        )
        .lower(runner)
        .compile()
    )


@dataclasses.dataclass
class _Progress:
    """What a (resumed) session starts from."""

    runner: Any
    done_updates: int = 0
    wall_offset: float = 0.0
    history: dict[str, list[np.ndarray]] = dataclasses.field(default_factory=dict)


def _start(
    cfg: PPOConfig, placement: shd.Placement, out: Path | None, resume: bool, env: EnvSpec | None
) -> _Progress:
    """Fresh initial state (its network from ``cfg.init_from`` if set), or the checkpoint in
    ``out`` placed on this run's devices."""
    start = None
    if cfg.init_from is not None and not resume:
        # Imported here: warm_start reads agent directories (jaxcage.export), which import this
        # module. Loaded and checked before anything is compiled.
        from jaxcage.ppo.warm_start import start_params, with_params

        start = (start_params(cfg), with_params)
    init = _cached(
        ("init", _program_key(cfg), placement.key, _env_key(env)),
        env,
        lambda: make_placed_init(cfg, placement, env),
    )
    if not resume:
        runner = init()
        if start is not None:
            params, place_params = start
            ts = runner.train_state
            runner = runner.replace(train_state=ts.replace(params=place_params(ts.params, params)))
            runner = shd.put(runner, runner_shardings(placement, runner))
        return _Progress(runner=runner)
    if out is None:
        raise ValueError("resume=True needs out_dir")
    path = out / ckpt.CHECKPOINT_NAME
    saved = ckpt.load(path, init.template)
    ckpt.check_compatible(path, saved.config, cfg)
    return _Progress(
        runner=shd.put(saved.runner, runner_shardings(placement, saved.runner)),
        done_updates=saved.update,
        wall_offset=saved.wall_time,
        history={k: [v] for k, v in saved.metrics.items()},
    )


class _RunLog:
    """The run's artefacts (config, CSV, TensorBoard, checkpoints, curve, progress lines),
    written by one process only (``jaxcage.sharding.is_writer``)."""

    def __init__(self, cfg: PPOConfig, out: Path | None, progress: _Progress, verbose: bool):
        self.cfg, self.history = cfg, progress.history
        self.writer = shd.is_writer()
        self.out = out if self.writer else None
        self.verbose = verbose and self.writer
        self.csv = self.tb = None
        if self.out is not None:
            self.out.mkdir(parents=True, exist_ok=True)
            plog.write_config(self.out / "config.yaml", cfg)
            self.csv = plog.CsvLogger(self.out / "metrics.csv")
            # Rewrite from the checkpointed history: rows logged after the last checkpoint of a
            # killed run are dropped here and recomputed, so none is lost or counted twice.
            self.csv.reset(_concat(self.history))
            if cfg.tensorboard:
                self.tb = plog.TensorBoardLogger(self.out / "tb")

    def say(self, text: str) -> None:
        if self.verbose:
            print(text, flush=True)

    def append(self, rows: dict[str, np.ndarray], done_updates: int, elapsed: float) -> None:
        for k, v in rows.items():
            self.history.setdefault(k, []).append(v)
        if self.csv is not None:
            self.csv.append(rows)
        if self.tb is not None:
            self.tb.write(rows)
        self.say(plog.progress_line(self.cfg, rows, done_updates, elapsed))

    def checkpoint(
        self, placement: shd.Placement, runner: Any, done_updates: int, wall_time: float
    ) -> None:
        host_runner = shd.fetch(runner)  # collective: every process gathers, one writes
        if self.out is not None:
            ckpt.save(
                self.out / ckpt.CHECKPOINT_NAME,
                ckpt.Checkpoint(
                    config=self.cfg,
                    runner=host_runner,
                    update=done_updates,
                    wall_time=wall_time,
                    metrics=_concat(self.history),
                    placement={
                        "devices": placement.num_devices,
                        "processes": placement.num_processes,
                    },
                ),
            )
        shd.barrier("checkpoint written")  # a resume on another process must find the file

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
        if self.out is not None and self.history:
            plog.plot_learning_curve(
                self.out / "learning_curve.png", _concat(self.history), self.cfg
            )


def train(
    cfg: PPOConfig,
    *,
    out_dir: str | Path | None = None,
    resume: bool = False,
    verbose: bool = False,
    profile: bool = False,
    env: EnvSpec | None = None,
    stop_after_updates: int | None = None,
) -> TrainResult:
    """Train ``cfg.num_seeds`` seeds of PPO and return the result.

    Runs on every device JAX sees (``cfg.num_devices`` to use fewer) and, with
    ``cfg.coordinator``/``num_processes``/``process_id`` or inside a SLURM/Open MPI job, on every
    process of a ``jax.distributed`` run (each process calls ``train`` with the same config; the
    first one writes the run directory). See ``jaxcage.sharding`` for what is split.

    Args:
        cfg: the configuration.
        out_dir: run directory for ``config.yaml``, ``metrics.csv``, ``checkpoint.npz``,
            ``learning_curve.png`` (and TensorBoard events); None keeps everything in memory.
        resume: continue from ``out_dir/checkpoint.npz`` (raises ``FileNotFoundError`` if absent),
            on any number of devices and processes.
        verbose: print the placement (``devices: D (processes: P)``) and a progress line after
            every chunk.
        profile: report compile / device / host time split, and write a JAX profiler trace of
            the second chunk to ``out_dir/profile`` (if the profiler is available).
        env: inject an environment ``(env, base_params)`` instead of ``jaxcage.make`` (tests).
        stop_after_updates: stop (after checkpointing) once this many updates are done, as if the
            process had been killed there; used by the resume tests.
    """
    t_start = time.perf_counter()
    placement = place(cfg)
    out = Path(out_dir) if out_dir is not None else None
    progress = _start(cfg, placement, out, resume, env)
    log = _RunLog(cfg, out, progress, verbose)
    log.say(placement.describe())
    runner, done_updates = progress.runner, progress.done_updates

    compile_time = 0.0
    compiled: dict[int, Any] = {}

    def get_chunk(n: int) -> Any:  # compiled ahead, so steps/s excludes compilation
        nonlocal compile_time
        t = time.perf_counter()
        if n not in compiled:
            compiled[n] = _cached(
                ("chunk", n, _program_key(cfg), placement.key, _env_key(env)),
                env,
                lambda: compile_chunk(cfg, placement, n, runner, env),
            )
        compile_time += time.perf_counter() - t
        return compiled[n]

    per_chunk = chunk_size(cfg)
    if done_updates < cfg.num_updates:
        get_chunk(min(per_chunk, cfg.num_updates - done_updates))
    log.say(
        f"compiled in {compile_time:.1f}s: {cfg.num_seeds} seed(s) x {cfg.num_envs} envs x "
        f"{cfg.num_steps} steps per update, {cfg.num_updates} updates "
        f"({cfg.env_steps_per_seed:,} env steps per seed)"
    )

    device_time = host_time = 0.0
    next_ckpt = (done_updates // cfg.checkpoint_every + 1) * cfg.checkpoint_every
    while done_updates < cfg.num_updates:
        n = min(per_chunk, cfg.num_updates - done_updates)
        fn = get_chunk(n)  # compiles only for a shorter last chunk
        trace = out / "profile" if profile and out and done_updates == per_chunk else None
        t0 = time.perf_counter()
        with plog.maybe_trace(trace if log.writer else None):
            runner, m = fn(runner)
            m = shd.fetch(m)
        t1 = time.perf_counter()
        done_updates += n
        elapsed = progress.wall_offset + t1 - t_start
        log.append(
            _chunk_rows(cfg, m, done_updates, n, elapsed - (t1 - t0), t1 - t0),
            done_updates,
            elapsed,
        )
        stop = stop_after_updates is not None and done_updates >= stop_after_updates
        if out is not None and (
            done_updates >= next_ckpt or done_updates == cfg.num_updates or stop
        ):
            wall = progress.wall_offset + time.perf_counter() - t_start
            log.checkpoint(placement, runner, done_updates, wall)
            next_ckpt = (done_updates // cfg.checkpoint_every + 1) * cfg.checkpoint_every
        device_time, host_time = device_time + t1 - t0, host_time + time.perf_counter() - t1
        if stop:
            break

    wall_time = progress.wall_offset + time.perf_counter() - t_start
    params = shd.fetch(runner.train_state.params)
    log.close()
    if profile and log.writer:
        print(
            f"profile: compile {compile_time:.1f}s, device (chunks) {device_time:.1f}s, "
            f"host (logging/checkpoints) {host_time:.2f}s, total {wall_time:.1f}s",
            flush=True,
        )
    return TrainResult(
        config=cfg,
        params=params,
        metrics=_concat(log.history),
        wall_time=wall_time,
        compile_time=compile_time,
        env_steps=int(done_updates * cfg.batch_size * cfg.num_seeds),
        out_dir=out,
        num_devices=placement.num_devices,
        num_processes=placement.num_processes,
    )


# Compiled programs of this process, so calling ``train`` again with the same config (a resume,
# a notebook re-run, the tests) does not compile again. Bounded: a program holds device code.
_PROGRAM_CACHE: dict[tuple[Any, ...], tuple[Any, Any]] = {}
_PROGRAM_CACHE_SIZE = 8


def _program_key(cfg: PPOConfig) -> PPOConfig:
    # Placement is keyed separately (``Placement.key``); host-loop fields change no program.
    return without_host_fields(cfg)


def _env_key(env: EnvSpec | None) -> tuple[int, int] | None:
    return None if env is None else (id(env[0]), id(env[1]))


def _cached(key: tuple[Any, ...], env: EnvSpec | None, build: Callable[[], Any]) -> Any:
    hit = _PROGRAM_CACHE.get(key)
    # The injected env and params are kept alive next to the program, so their id()s in the key
    # can't be reused by other objects.
    if hit is not None and (env is None or (hit[1][0] is env[0] and hit[1][1] is env[1])):
        return hit[0]
    program = build()
    if len(_PROGRAM_CACHE) >= _PROGRAM_CACHE_SIZE:
        _PROGRAM_CACHE.pop(next(iter(_PROGRAM_CACHE)))
    _PROGRAM_CACHE[key] = (program, env)
    return program


def _chunk_rows(
    cfg: PPOConfig, m: dict[str, np.ndarray], done_updates: int, n: int, t0: float, dt: float
) -> dict[str, np.ndarray]:
    """Per-update host columns for one chunk; each array is (num_seeds, n).

    Wall time inside a chunk is interpolated linearly (the device reports nothing until the
    chunk ends); steps/s is the chunk's average.
    """
    first = done_updates - n + 1
    upd = np.arange(first, done_updates + 1)
    rows = {k: np.asarray(v, dtype=np.float64) for k, v in m.items()}
    shape = (cfg.num_seeds, n)
    rows["update"] = np.broadcast_to(upd, shape).astype(np.float64)
    rows["env_steps"] = rows["update"] * cfg.batch_size
    rows["wall_time"] = np.broadcast_to(t0 + dt * (np.arange(1, n + 1) / n), shape).copy()
    rows["steps_per_sec"] = np.full(shape, n * cfg.batch_size * cfg.num_seeds / max(dt, 1e-9))
    return rows


def _concat(history: dict[str, list[np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate(v, axis=1) for k, v in history.items() if v}
