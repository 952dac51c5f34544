"""Host-side stepping: the Gymnasium adapters one ``step`` call at a time, against CybORG.

What a PyTorch / SB3 / CleanRL user sees: ``CageGymEnv.step`` (one env) and
``CageVectorEnv.step`` at ``--num-envs`` environments, each driven from Python with uniformly
random actions drawn on the host beforehand, episodes reset as a user loop would (``reset`` on
truncation for the single env; auto-reset for the vector env). Each case steps for ``--seconds``
of wall time after a warm-up (compilation excluded). CybORG's single-process rate is measured in
the same run, half before and half after the jaxcage cases (``_common.bracket_cyborg``), and
every rate is also given as a ratio to it.

Where the per-call time goes (the floor): the same run measures a trivial jitted function (one
small array in and out: the bare dispatch cost of this jax version), the compiled single-env step
called directly (no adapter), and the same step inside a ``lax.scan`` (per step). With
``--profile DIR`` it also writes a JAX profiler trace of 200 single-env steps and prints its
per-op summary (``_common.summarize_trace``).

Usage::

    python benchmarks/bench_gym.py --out benchmarks/results/bench_gym_cpu.json
    python benchmarks/bench_gym.py --num-envs 1 8 --seconds 1 --no-cyborg
    python benchmarks/bench_gym.py --inline-runtime --out benchmarks/results/bench_gym_inline.json
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from _common import (
    add_cyborg_arguments,
    attach_cyborg_ratios,
    bracket_cyborg,
    cyborg_line,
    environment_info,
    format_load,
    format_si,
    format_table,
    log,
    measure_cyborg,
    publish,
    result_header,
    summarize_trace,
)

from jaxcage.constants import NUM_BLUE_ACTIONS
from jaxcage.env import CageEnv, make_params
from jaxcage.gym_adapter import CageGymEnv, CageVectorEnv
from jaxcage.host_step import inline_cpu_runtime, inline_cpu_runtime_active
from jaxcage.state import init_state

DEFAULT_NUM_ENVS = (1, 8, 64, 1024, 8192)


def _timed_loop(step: Callable[[int], None], seconds: float, min_calls: int) -> tuple[int, float]:
    """Call ``step(i)`` until ``seconds`` passed and at least ``min_calls`` were made."""
    calls = 0
    start = time.perf_counter()
    deadline = start + seconds
    while calls < min_calls or time.perf_counter() < deadline:
        step(calls)
        calls += 1
    return calls, time.perf_counter() - start


def bench_single(args: argparse.Namespace) -> dict[str, Any]:
    """``CageGymEnv`` stepped one action at a time, reset on truncation."""
    env = CageGymEnv(args.red, max_steps=args.max_steps)
    actions = np.random.default_rng(args.seed).integers(0, NUM_BLUE_ACTIONS, size=4096)
    env.reset(seed=args.seed)
    for i in range(args.warmup):
        env.step(int(actions[i % actions.size]))
    env.reset(seed=args.seed)

    def step(i: int) -> None:
        if env.step(int(actions[i % actions.size]))[3]:
            env.reset()

    calls, elapsed = _timed_loop(step, args.seconds, args.min_calls)
    return {
        "adapter": "CageGymEnv",
        "num_envs": 1,
        "status": "ok",
        "calls": calls,
        "seconds": elapsed,
        "us_per_call": elapsed / calls * 1e6,
        "steps_per_s": calls / elapsed,
    }


def bench_vector(num_envs: int, args: argparse.Namespace) -> dict[str, Any]:
    """``CageVectorEnv`` (SAME_STEP auto-reset) stepped with one action batch per call."""
    start = time.perf_counter()
    envs = CageVectorEnv(num_envs, args.red, max_steps=args.max_steps)
    build_s = time.perf_counter() - start
    rng = np.random.default_rng(args.seed)
    batches = rng.integers(0, NUM_BLUE_ACTIONS, size=(8, num_envs))
    envs.reset(seed=args.seed)
    for i in range(args.warmup):
        envs.step(batches[i % len(batches)])

    def step(i: int) -> None:
        envs.step(batches[i % len(batches)])

    calls, elapsed = _timed_loop(step, args.seconds, args.min_calls)
    return {
        "adapter": "CageVectorEnv",
        "num_envs": num_envs,
        "status": "ok",
        "build_and_compile_s": build_s,
        "calls": calls,
        "seconds": elapsed,
        "us_per_call": elapsed / calls * 1e6,
        "steps_per_s": num_envs * calls / elapsed,
    }


def _per_call_us(fn: Callable[[], Any], seconds: float) -> float:
    for _ in range(20):
        jax.block_until_ready(fn())
    calls = 0
    start = time.perf_counter()
    while calls < 50 or time.perf_counter() - start < seconds:
        jax.block_until_ready(fn())
        calls += 1
    return (time.perf_counter() - start) / calls * 1e6


def measure_floor(args: argparse.Namespace) -> dict[str, Any]:
    """Per-call costs below the adapter: bare dispatch, the compiled step, the step in a scan."""
    seconds = max(0.5, args.seconds / 2)
    trivial = jax.jit(lambda x: x + 1).lower(jnp.zeros(52, jnp.int32)).compile()
    x = np.zeros(52, np.int32)
    env = CageGymEnv(args.red, max_steps=args.max_steps)
    env.reset(seed=0)
    step_fn, action = env._step_fn, np.zeros((), np.int32)  # the adapter's own compiled step
    holder = [env._carry]

    def packed_step() -> Any:
        holder[0], result = step_fn(holder[0], action)
        return result

    cage, params = CageEnv(), make_params(args.red, max_steps=args.max_steps)
    steps = 100

    def scan(key: jax.Array, state: Any) -> tuple[Any, jax.Array]:
        def body(carry: Any, _: None) -> tuple[Any, jax.Array]:
            key, state = carry
            key, key_step = jax.random.split(key)
            obs, state, reward, _, _ = cage.step(key_step, state, jnp.int32(0), params)
            return (key, state), reward + obs.sum()

        (key, state), out = jax.lax.scan(body, (key, state), None, length=steps)
        return (key, state), out.sum()

    scan_c = jax.jit(scan).lower(jax.random.key(0), init_state()).compile()
    key0, state0 = jax.random.key(0), init_state()
    return {
        "trivial_jit_us": _per_call_us(lambda: trivial(x), seconds),
        "compiled_step_us": _per_call_us(packed_step, seconds),
        "scan_step_us": _per_call_us(lambda: scan_c(key0, state0), seconds) / steps,
    }


def write_profile(directory: str, args: argparse.Namespace) -> dict[str, Any] | None:
    """A profiler trace of 200 ``CageGymEnv.step`` calls and its per-op summary."""
    env = CageGymEnv(args.red, max_steps=args.max_steps)
    env.reset(seed=0)
    for _ in range(50):
        env.step(0)
    with jax.profiler.trace(directory):
        for _ in range(200):
            env.step(0)
    return summarize_trace(directory)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--num-envs",
        type=int,
        nargs="+",
        default=list(DEFAULT_NUM_ENVS),
        metavar="N",
        help="vector-env sizes (default: %(default)s)",
    )
    parser.add_argument("--no-single", action="store_true", help="skip the CageGymEnv case")
    parser.add_argument("--seconds", type=float, default=5.0, help="wall time per case (5)")
    parser.add_argument("--min-calls", type=int, default=20, help="calls per case at least (20)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed calls per case (20)")
    parser.add_argument("--red", default="b_line", help="red agent (default: b_line)")
    parser.add_argument("--max-steps", type=int, default=100, help="episode length (100)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-floor", action="store_true", help="skip the floor measurements")
    parser.add_argument("--profile", metavar="DIR", help="trace 200 single-env steps into DIR")
    parser.add_argument(
        "--sync-dispatch",
        action="store_true",
        help="run CPU programs on the calling thread (jax_cpu_enable_async_dispatch=False, set "
        "before JAX's backend starts): saves the hand-off to the async dispatch thread",
    )
    parser.add_argument(
        "--inline-runtime",
        action="store_true",
        help="jaxcage.host_step.inline_cpu_runtime(): XLA:CPU with a one-thread intra-op pool "
        "(NPROC=1) and sync dispatch, set before JAX's backend starts",
    )
    add_cyborg_arguments(parser)
    args = parser.parse_args(argv)
    if any(n < 1 for n in args.num_envs):
        parser.error("--num-envs values must be >= 1")
    if args.seconds <= 0 or args.min_calls < 1 or args.warmup < 0 or args.max_steps < 1:
        parser.error("--seconds, --min-calls and --max-steps must be positive")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.inline_runtime:  # read when the CPU client is created, so before any computation
        inline_cpu_runtime()
    if args.sync_dispatch:
        jax.config.update("jax_cpu_enable_async_dispatch", False)
    environment = environment_info()
    environment["cpu_async_dispatch"] = bool(jax.config.values["jax_cpu_enable_async_dispatch"])
    environment["inline_cpu_runtime"] = inline_cpu_runtime_active()
    log(f"jax {environment['jax']} on {environment['devices']} ({environment['cpu_count']} CPUs)")
    cyborg_before = measure_cyborg(args, red=args.red, max_steps=args.max_steps, share=0.5)
    records: list[dict[str, Any]] = []
    if not args.no_single:
        log("CageGymEnv (1 env) ...")
        records.append(bench_single(args))
        log(f"  {format_si(records[-1]['steps_per_s'])} steps/s")
    for n in args.num_envs:
        log(f"CageVectorEnv num_envs={n} ...")
        records.append(bench_vector(n, args))
        log(f"  {format_si(records[-1]['steps_per_s'])} steps/s")
    floor = None if args.no_floor else measure_floor(args)
    profile = None
    if args.profile:
        profile = write_profile(args.profile, args)
    cyborg_after = measure_cyborg(args, red=args.red, max_steps=args.max_steps, share=0.5)
    cyborg = bracket_cyborg(cyborg_before, cyborg_after)
    attach_cyborg_ratios(records, cyborg)
    result = {
        **result_header("gym_adapters", args, environment),
        "jaxcage": records,
        "cyborg": cyborg,
        "floor": floor,
        "profile": profile,
    }
    publish(render_table(result), result, args.out)
    return result


def render_table(result: dict[str, Any]) -> str:
    """The human-readable summary printed to stdout."""
    rows = []
    for r in result["jaxcage"]:
        ratio = r.get("ratio_vs_cyborg")
        rows.append(
            [
                r["adapter"],
                r["num_envs"],
                f"{r['us_per_call']:,.0f}",
                format_si(r["steps_per_s"]),
                "-" if ratio is None else f"{ratio:,.1f}x",
            ]
        )
    env = result["environment"]
    lines = [
        f"jaxcage Gymnasium adapters: red={result['config']['red']}, random Blue, "
        f"{result['config']['seconds']:g} s per case",
        f"device: {env['device_kind']} ({env['backend']}), jax {env['jax']}, "
        f"{env['cpu_count']} CPUs, load {format_load(env['load_average'])} at start, "
        f"{format_load(result['load_average_end'])} at end",
        format_table(rows, ["adapter", "num_envs", "us/call", "steps/s", "vs CybORG"]),
        cyborg_line(result["cyborg"]),
    ]
    floor = result["floor"]
    if floor:
        lines.append(
            f"floor: trivial jit call {floor['trivial_jit_us']:.1f} us; compiled single-env step "
            f"{floor['compiled_step_us']:.1f} us; the same step inside lax.scan "
            f"{floor['scan_step_us']:.1f} us"
        )
    if result["profile"]:
        cats = result["profile"]["categories_s"]
        lines.append(
            "profile (200 steps): " + ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in cats.items())
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
