"""DAgger (Ross, Gordon and Bagnell, 2011) from a privileged teacher into a defender's network.

The teacher is the defender itself (deterministic, its actions frozen at the start) with a rule
from ``teachers.py`` applied on top. The student starts as a copy of the defender. Iteration i
rolls out ``episodes`` episodes of ``max_steps`` steps in jaxcage under ``rules``. At every step
the teacher acts with probability ``beta_i = 0.5 ** i`` and the student (deterministic) acts
otherwise, so iteration 0 follows the teacher and later ones mostly the student. Every visited
state is labelled with the teacher's action and added to the data set, and the student's actor
is then fitted to all the data so far by cross-entropy (Adam, shuffled minibatches, ``epochs``
passes). The critic is untouched, since the loss does not depend on it. A fine-tune with PPO can
start from the result (``init_from``) like from any exported agent.

Each rollout and each fit is one compiled program (a ``lax.scan`` over steps, or over epochs and
minibatches). The host loop runs over the iterations only and gathers the growing data set, whose
size changes every iteration. Mirrors no CybORG file.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxcage.distill.teachers import TEACHERS, Teacher
from jaxcage.env import make as make_cage_env
from jaxcage.evaluation import NetworkShape, check_count
from jaxcage.export import ExportedAgent
from jaxcage.ppo.config import RED_AGENTS
from jaxcage.ppo.features import (
    NUM_ACTIONS,
    PolicyInput,
    compact_input,
    init_memories,
    update_memory,
)
from jaxcage.ppo.networks import make_network
from jaxcage.rules import RULE_NAMES


@dataclasses.dataclass(frozen=True)
class DistillConfig:
    """Settings of one distillation (``jaxcage distill``)."""

    teacher: str = "haraka_restore"
    rules: str = "leaderboard"  # the game the student is taught and shipped for
    # drawn uniformly per episode; Sleep too, or the student is never shown that doing nothing
    # is the defender's play there (a trial without it restored once per Sleep episode)
    red_agents: tuple[str, ...] = ("b_line", "meander", "sleep")
    max_steps: int = 100
    episodes: int = 2048  # per iteration
    iterations: int = 6
    epochs: int = 30  # passes over the data set per iteration
    minibatch_size: int = 4096
    lr: float = 1e-3
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "red_agents", tuple(self.red_agents))

    def validate(self) -> Teacher:
        """The teacher, after checking every field (ValueError names the bad one)."""
        if self.teacher not in TEACHERS:
            raise ValueError(f"unknown teacher {self.teacher!r}; expected one of {list(TEACHERS)}")
        if self.rules not in RULE_NAMES:
            raise ValueError(f"unknown rules {self.rules!r}; expected one of {list(RULE_NAMES)}")
        teacher = TEACHERS[self.teacher]
        teacher.check_rules(self.rules)
        if not self.red_agents:
            raise ValueError("red_agents must name at least one red agent")
        for red in self.red_agents:
            if red not in RED_AGENTS:
                raise ValueError(f"unknown red agent {red!r}; expected one of {list(RED_AGENTS)}")
        for name in ("max_steps", "episodes", "iterations", "epochs", "minibatch_size"):
            check_count(name, getattr(self, name))
        if not (isinstance(self.lr, (int, float)) and 0 < self.lr < 1):
            raise ValueError(f"lr must be in (0, 1), got {self.lr!r}")
        return teacher

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "red_agents": list(self.red_agents)}


@dataclasses.dataclass(frozen=True)
class IterationReport:
    """One DAgger iteration: how the executed policy did, and how well the student follows the
    teacher on the states it visited (measured before this iteration's fit)."""

    iteration: int
    beta: float
    mean_return: float  # of the executed (mixed) policy, over the iteration's episodes
    agreement: float  # student == teacher, over all visited states
    rule_states: int  # visited states where the rule changed the defender's action
    rule_agreement: float | None  # student == teacher on those (None when there are none)
    dataset_size: int  # after this iteration's states were added
    fit_loss: float  # cross-entropy to the teacher's actions, mean over the fit's last epoch
    wall_s: float

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@functools.lru_cache(maxsize=4)
def _rollout_program(shape: NetworkShape, teacher: str, n: int, steps: int, rules: str) -> Any:
    """Jitted rollout of ``n`` episodes: per step the compact input, the teacher's action, whether
    the rule fired, whether the student agreed, and the episode returns."""
    net = make_network(NUM_ACTIONS, shape.hidden_sizes, shape.activation, shape.features)
    env, base = make_cage_env("b_line", max_steps=steps, green_agent="sleep", rules=rules)
    rule = jax.vmap(TEACHERS[teacher].fn)
    inputs = jax.vmap(lambda o, m: compact_input(o, m, shape.features))

    @jax.jit
    def run(teacher_params: Any, student_params: Any, key: jax.Array, reds: jax.Array, beta):
        env_params = jax.vmap(lambda r: base.replace(red_agent=r))(reds)
        key, key_reset = jax.random.split(key)
        obs, state = jax.vmap(env.reset)(jax.random.split(key_reset, n), env_params)
        memory = init_memories(n)

        def step(carry: Any, key: jax.Array) -> tuple[Any, Any]:
            obs, state, memory = carry
            x = inputs(obs, memory)
            own = jnp.argmax(net.apply(teacher_params, x)[0], axis=-1).astype(jnp.int32)
            label = rule(state, own)
            student = jnp.argmax(net.apply(student_params, x)[0], axis=-1).astype(jnp.int32)
            key_mix, key_env = jax.random.split(key)
            action = jnp.where(jax.random.uniform(key_mix, (n,)) < beta, label, student)
            obs2, state2, reward, _, _ = jax.vmap(env.step_env)(
                jax.random.split(key_env, n), state, action, env_params
            )
            memory = jax.vmap(update_memory)(memory, obs, action)
            return (obs2, state2, memory), (x, label, label != own, student == label, reward)

        _, (x, labels, fired, agree, rewards) = jax.lax.scan(
            step, (obs, state, memory), jax.random.split(key, steps)
        )
        return x, labels, fired, agree, rewards.sum(axis=0)

    return run


@functools.lru_cache(maxsize=8)
def _fit_program(
    shape: NetworkShape, size: int, epochs: int, minibatch: int, lr: float
) -> tuple[Any, optax.GradientTransformation]:
    """Jitted ``fit(params, opt_state, data, labels, key)``: ``epochs`` shuffled passes of
    ``size // minibatch`` Adam steps on the actor's cross-entropy to the teacher's (deterministic)
    action.

    Hard labels, fitted to convergence: a PPO policy is diffuse (the shipped one's entropy is
    about 3.4 nats of 5.0), so its argmax hangs on small logit gaps. A few light passes, whether
    to these labels or to its own softmax, flipped 15-30% of its deterministic actions in trials;
    30 passes at lr 1e-3 keep 96-97% (BENCHMARKS.md "Distillation")."""
    net = make_network(NUM_ACTIONS, shape.hidden_sizes, shape.activation, shape.features)
    optimiser = optax.adam(lr)
    batch = min(minibatch, size)
    num_batches = size // batch

    def loss_fn(params: Any, x: PolicyInput, labels: jax.Array) -> jax.Array:
        logits = net.apply(params, x)[0]
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

    @jax.jit
    def fit(params: Any, opt_state: Any, data: PolicyInput, labels: jax.Array, key: jax.Array):
        def epoch(carry: Any, key: jax.Array) -> tuple[Any, jax.Array]:
            order = jax.random.permutation(key, size)[: num_batches * batch]
            order = order.reshape(num_batches, batch)

            def minibatch_step(carry: Any, idx: jax.Array) -> tuple[Any, jax.Array]:
                params, opt_state = carry
                x = jax.tree.map(lambda a: a[idx], data)
                loss, grads = jax.value_and_grad(loss_fn)(params, x, labels[idx])
                updates, opt_state = optimiser.update(grads, opt_state, params)
                return (optax.apply_updates(params, updates), opt_state), loss

            carry, losses = jax.lax.scan(minibatch_step, carry, order)
            return carry, losses.mean()

        (params, opt_state), losses = jax.lax.scan(
            epoch, (params, opt_state), jax.random.split(key, epochs)
        )
        return params, opt_state, losses[-1]

    return fit, optimiser


def distill(
    defender: ExportedAgent,
    cfg: DistillConfig,
    log: Callable[[IterationReport], None] | None = None,
) -> tuple[ExportedAgent, list[IterationReport]]:
    """The defender taught ``cfg.teacher``'s play by DAgger, as an agent for ``cfg.rules``, and
    one report per iteration. ``log(report)`` is called after each iteration if given.

    Raises:
        ValueError: a bad ``cfg`` or a defender that is not a single network (before anything
            is compiled).
    """
    cfg.validate()
    if not isinstance(defender, ExportedAgent):
        raise ValueError("distill takes a single-network defender (not a switch defender)")
    shape = NetworkShape.of(defender.config)
    teacher_params = jax.tree.map(jnp.asarray, defender.params)
    student = teacher_params
    n, steps = cfg.episodes, cfg.max_steps
    rollout = _rollout_program(shape, cfg.teacher, n, steps, cfg.rules)
    red_ids = jnp.asarray([RED_AGENTS.index(r) for r in cfg.red_agents], jnp.int32)
    key = jax.random.key(cfg.seed)
    data: list[Any] = []
    reports: list[IterationReport] = []
    opt_state = None
    for i in range(cfg.iterations):
        start = time.perf_counter()
        key, key_red, key_roll, key_fit = jax.random.split(key, 4)
        beta = 0.5**i
        reds = red_ids[jax.random.randint(key_red, (n,), 0, len(cfg.red_agents))]
        x, labels, fired, agree, returns = rollout(teacher_params, student, key_roll, reds, beta)
        fired, agree = np.asarray(fired), np.asarray(agree)
        flat = jax.tree.map(lambda a: np.asarray(a).reshape(n * steps, *a.shape[2:]), x)
        data.append((flat, np.asarray(labels).reshape(-1)))
        all_x = jax.tree.map(lambda *a: np.concatenate(a), *[d[0] for d in data])
        all_labels = np.concatenate([d[1] for d in data])
        size = len(all_labels)
        fit, optimiser = _fit_program(shape, size, cfg.epochs, cfg.minibatch_size, cfg.lr)
        if opt_state is None:
            opt_state = optimiser.init(student)
        student, opt_state, loss = fit(student, opt_state, all_x, all_labels, key_fit)
        rule_states = int(fired.sum())
        report = IterationReport(
            iteration=i,
            beta=beta,
            mean_return=float(np.asarray(returns).mean()),
            agreement=float(agree.mean()),
            rule_states=rule_states,
            rule_agreement=float(agree[fired].mean()) if rule_states else None,
            dataset_size=size,
            fit_loss=float(loss),
            wall_s=round(time.perf_counter() - start, 1),
        )
        reports.append(report)
        if log is not None:
            log(report)
    meta = {
        **defender.meta,
        "trained_rules": defender.meta.get("trained_rules", defender.rules),
        "distilled": {
            "config": cfg.to_dict(),
            "teacher_summary": TEACHERS[cfg.teacher].summary,
            "iterations": [r.to_dict() for r in reports],
        },
    }
    params = jax.tree.map(np.asarray, jax.device_get(student))
    return dataclasses.replace(defender, params=params, rules=cfg.rules, meta=meta), reports
