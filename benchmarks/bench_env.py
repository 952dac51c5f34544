"""Environment throughput: random-policy steps/s of jaxcage against num_envs, and CybORG's rate.

For each batch size the program timed is one jitted call that runs ``--steps`` steps of
``num_envs`` environments in a ``lax.scan`` (uniformly random Blue actions drawn on the device,
auto-reset included, observations and rewards reduced into a checksum so nothing is optimised
away). Compilation (``lower().compile()``) and the first execution are reported apart from the
steady state: ``--repeats`` further calls, each closed by ``jax.block_until_ready``, of which the
median is reported. Sizes whose program (per XLA's memory analysis) does not fit in free device
memory are skipped with a note. In the same run, CybORG's single-process rate (csle-cyborg
``ChallengeWrapper``, same red agent, random Blue, resets included) is measured for
``--cyborg-seconds`` of wall time (half before, half after the jaxcage timings), and the ratio
jaxcage / CybORG is given per size and at the best.

Usage::

    python benchmarks/bench_env.py                                # all sizes, B_line, 20 s CybORG
    python benchmarks/bench_env.py --num-envs 1 256 4096 --out results/bench_env.json
    python benchmarks/bench_env.py --red mixed --no-cyborg --profile /tmp/trace

Runs unchanged on CPU or GPU; the env batch is split over every device JAX sees
(``jaxcage.sharding``).
"""

from __future__ import annotations

import argparse
import gc
from typing import Any

import jax
import jax.numpy as jnp
from _common import (
    add_cyborg_arguments,
    attach_cyborg_ratios,
    bracket_cyborg,
    cyborg_line,
    environment_info,
    fastest,
    format_load,
    format_si,
    format_table,
    log,
    measure_cyborg,
    measure_program,
    publish,
    result_header,
)

from jaxcage import sharding as shd
from jaxcage.constants import NUM_BLUE_ACTIONS, RED_AGENT_NAMES
from jaxcage.env import CageEnv, make_params
from jaxcage.state import EnvParams, EnvState

DEFAULT_NUM_ENVS = (1, 16, 256, 4096, 16384, 65536)
RED_CHOICES = (*RED_AGENT_NAMES, "mixed")


def batch_params(red: str, green: str, max_steps: int, num_envs: int) -> tuple[EnvParams, bool]:
    """Params for the batch: shared (unbatched) for one red agent; for ``"mixed"`` alternating
    B_line / Meander per environment (batched along axis 0). Returns ``(params, batched)``."""
    if red != "mixed":
        return make_params(red, max_steps=max_steps, green_agent=green), False
    bline = make_params("b_line", max_steps=max_steps, green_agent=green)
    meander = make_params("meander", max_steps=max_steps, green_agent=green)
    is_bline = jnp.arange(num_envs) % 2 == 0
    return jax.tree.map(lambda a, b: jnp.where(is_bline, a, b), bline, meander), True


def env_shardings(num_envs: int, params_batched: bool) -> tuple[Any, Any, Any]:
    """``(replicated, envs, params)`` shardings: the env batch split over every device JAX sees
    (``jaxcage.sharding``; independent work, no communication) when it divides, else replicated."""
    mesh = shd.make_mesh()
    rep = shd.replicated(mesh)
    envs = shd.leading(mesh) if num_envs % mesh.size == 0 else rep
    return rep, envs, envs if params_batched else rep


def make_rollout(num_envs: int, steps: int, params_batched: bool) -> Any:
    """A jitted ``(key, state, params) -> (key, state, reward_sum, obs_sum)`` running ``steps``
    random-policy steps of ``num_envs`` environments; the state argument is donated."""
    env = CageEnv()
    p_axis = 0 if params_batched else None
    vstep = jax.vmap(env.step, in_axes=(0, 0, 0, p_axis))

    def rollout(
        key: jax.Array, state: EnvState, params: EnvParams
    ) -> tuple[jax.Array, EnvState, jax.Array, jax.Array]:
        def body(
            carry: tuple[jax.Array, EnvState, jax.Array, jax.Array], xs: None
        ) -> tuple[tuple[jax.Array, EnvState, jax.Array, jax.Array], None]:
            del xs
            key, state, reward_sum, obs_sum = carry
            key, key_action, key_step = jax.random.split(key, 3)
            actions = jax.random.randint(
                key_action, (num_envs,), 0, NUM_BLUE_ACTIONS, dtype=jnp.int32
            )
            obs, state, reward, _done, _info = vstep(
                jax.random.split(key_step, num_envs), state, actions, params
            )
            # Reduce what an agent would read, so XLA cannot drop the observation computation
            # (obs_sum is only a checksum: it may wrap for very long calls).
            return (key, state, reward_sum + reward.sum(), obs_sum + obs.sum()), None

        init = (key, state, jnp.float32(0.0), jnp.int32(0))
        (key, state, reward_sum, obs_sum), _ = jax.lax.scan(body, init, None, length=steps)
        return key, state, reward_sum, obs_sum

    rep, envs, params = env_shardings(num_envs, params_batched)
    return jax.jit(
        rollout,
        donate_argnums=1,
        in_shardings=(rep, envs, params),
        out_shardings=(rep, envs, rep, rep),
    )


def initial_state(num_envs: int, params: EnvParams, params_batched: bool) -> EnvState:
    """A batch of freshly reset environments."""
    env = CageEnv()
    p_axis = 0 if params_batched else None
    keys = jax.random.split(jax.random.key(0), num_envs)
    _, state = jax.jit(jax.vmap(env.reset, in_axes=(0, p_axis)))(keys, params)
    return state


def bench_size(
    num_envs: int, args: argparse.Namespace
) -> tuple[dict[str, Any], tuple[Any, tuple[Any, ...]] | None]:
    """Measure one batch size.

    Returns ``(record, handle)``: the JSON record, and ``(compiled, next_args)`` to run the program
    once more (for ``--profile``), or ``None`` when the size was skipped.
    """

    def prepare() -> tuple[Any, tuple[Any, ...], dict[str, Any]]:
        params, batched = batch_params(args.red, args.green, args.max_steps, num_envs)
        state = initial_state(num_envs, params, batched)
        shardings = env_shardings(num_envs, batched)
        call_args = shd.put((jax.random.key(args.seed), state, params), shardings)
        return make_rollout(num_envs, args.steps, batched), call_args, {}

    steps = num_envs * args.steps
    timed, out, handle = measure_program(
        prepare, args.repeats, carry=lambda out, prev: (out[0], out[1], prev[2])
    )
    record: dict[str, Any] = {"num_envs": num_envs, "steps_per_call": steps, **timed}
    if handle is not None:
        record.update(
            steps_per_s=steps / record["median_s"],
            steps_per_s_max=steps / record["min_s"],
            # Sanity value: a random Blue's mean reward per step (a broken step shows up here).
            mean_reward_per_step=float(out[2]) / steps,
        )
    return record, handle


def write_profile(directory: str, handle: tuple[Any, tuple[Any, ...]]) -> None:
    """A JAX profiler trace (TensorBoard / Perfetto) of one timed call of a compiled program."""
    compiled, call_args = handle
    with jax.profiler.trace(directory):
        jax.block_until_ready(compiled(*call_args))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--num-envs",
        type=int,
        nargs="+",
        default=list(DEFAULT_NUM_ENVS),
        metavar="N",
        help="batch sizes to measure (default: %(default)s)",
    )
    parser.add_argument(
        "--steps", type=int, default=100, help="steps per env per timed call (default: 100)"
    )
    parser.add_argument(
        "--repeats", type=int, default=5, help="timed calls per size; median reported (default: 5)"
    )
    parser.add_argument("--red", choices=RED_CHOICES, default="b_line", help="red agent")
    parser.add_argument("--green", choices=("sleep", "random"), default="sleep", help="green agent")
    parser.add_argument("--max-steps", type=int, default=100, help="episode length (default: 100)")
    parser.add_argument("--seed", type=int, default=0)
    add_cyborg_arguments(parser)
    parser.add_argument("--profile", metavar="DIR", help="write a profiler trace of one timed call")
    args = parser.parse_args(argv)
    for name in ("steps", "repeats", "max_steps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if any(n < 1 for n in args.num_envs):
        parser.error("--num-envs values must be >= 1")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    environment = environment_info()
    log(f"jax {environment['jax']} on {environment['devices']} ({environment['cpu_count']} CPUs)")

    red = "b_line" if args.red == "mixed" else args.red  # CybORG runs one red agent
    cyborg_before = measure_cyborg(args, red=red, max_steps=args.max_steps, share=0.5)
    records: list[dict[str, Any]] = []
    best: tuple[float, int, tuple[Any, tuple[Any, ...]]] | None = None  # (steps/s, size, handle)
    for num_envs in args.num_envs:
        log(f"num_envs={num_envs}: compiling and timing {args.repeats} x {args.steps} steps ...")
        record, handle = bench_size(num_envs, args)
        records.append(record)
        if handle is not None:
            sps = record["steps_per_s"]
            log(f"  {format_si(sps)} steps/s, compile {record['compile_s']:.1f} s")
            if best is None or sps > best[0]:
                best = (sps, num_envs, handle)
        else:
            log(f"  skipped: {record['note']}")
        del handle
        gc.collect()

    profile: dict[str, Any] | None = None
    if args.profile and best is not None:
        write_profile(args.profile, best[2])
        profile = {"dir": args.profile, "num_envs": best[1]}
        log(f"profiler trace of one call at num_envs={profile['num_envs']} in {args.profile}")
    best = None
    gc.collect()

    cyborg_after = measure_cyborg(args, red=red, max_steps=args.max_steps, share=0.5)
    cyborg = bracket_cyborg(cyborg_before, cyborg_after)
    attach_cyborg_ratios(records, cyborg)
    result = {
        **result_header("env_throughput", args, environment),
        "jaxcage": records,
        "cyborg": cyborg,
        "best": fastest(records, ["num_envs"]),
        "profile": profile,
    }
    publish(render_table(result), result, args.out)
    return result


def render_table(result: dict[str, Any]) -> str:
    """The human-readable summary printed to stdout."""
    rows = []
    for r in result["jaxcage"]:
        if r["status"] != "ok":
            rows.append([r["num_envs"], "-", "-", "-", "-", "-", r.get("note", "")])
            continue
        ratio = r.get("ratio_vs_cyborg")
        rows.append(
            [
                r["num_envs"],
                f"{r['compile_s']:.2f}",
                f"{r['first_run_s']:.3f}",
                f"{r['median_s']:.4f}",
                format_si(r["steps_per_s"]),
                "-" if ratio is None else f"{ratio:,.0f}x",
                "",
            ]
        )
    header = ["num_envs", "compile s", "1st run s", "median s/call", "steps/s", "vs CybORG", "note"]
    env = result["environment"]
    lines = [
        f"jaxcage env throughput: red={result['config']['red']}, random Blue, "
        f"{result['config']['steps']} steps/env/call, median of {result['config']['repeats']}",
        f"device: {env['device_kind']} ({env['backend']}), jax {env['jax']}, "
        f"{env['cpu_count']} CPUs, load {format_load(env['load_average'])}",
        format_table(rows, header),
    ]
    lines.append(cyborg_line(result["cyborg"]))
    best = result["best"]
    if best is not None:
        ratio = best["ratio_vs_cyborg"]
        lines.append(
            f"best: {format_si(best['steps_per_s'])} steps/s at num_envs={best['num_envs']}"
            + ("" if ratio is None else f", {ratio:,.0f}x CybORG")
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
