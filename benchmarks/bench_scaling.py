"""Scaling: how steps/s and memory grow with num_envs and num_seeds, env-only and training.

Four parts, each a jitted program timed with ``jax.block_until_ready`` after an ahead-of-time
compile (reported apart) and a warm-up call:

1. **env-only**: ``bench_env``'s random-policy rollout (``--steps`` steps of ``num_envs``
   environments in a ``lax.scan``) at every ``--env-num-envs``, and vmapped over ``S`` seeds
   (``--env-seeds`` at ``--env-seeds-num-envs``: S independent batches in one program).
2. **training**: ``bench_train``'s end-to-end PPO chunk (the trainer's own program) at every
   ``--train-num-envs``, and with ``num_seeds`` = ``--train-seeds`` at ``--train-seeds-num-envs``.
3. **breakdown** at ``--breakdown-num-envs``: the same env steps as (a) env-only with a random
   policy, (b) the trainer's rollout alone (policy forward passes, sampling, bootstrap values,
   policy memory, GAE), (c) a full PPO update. (c) - (b) is the cost of the K epochs of minibatch
   SGD, (b) - (a) the policy's share of the rollout.
4. ``--profile DIR``: a JAX profiler trace of one training chunk at ``--profile-num-envs``, and
   its summary (self time per op and per op category, how many worker threads were busy at once).

Memory per program: XLA's compiled memory analysis (arguments, outputs, temporaries) and this
process's resident set (RSS) after the run. For each sweep the JSON gives ``saturates_at``: the
smallest size reaching 90% of the sweep's best steps/s (beyond it, more parallel environments
buy nothing on this machine).

Usage::

    python benchmarks/bench_scaling.py --out benchmarks/results/bench_scaling_cpu.json \\
        --profile benchmarks/results/profile_cpu
    python benchmarks/bench_scaling.py --env-num-envs 16 256 --train-num-envs 64 \\
        --env-seeds --train-seeds --no-breakdown

Runs unchanged on CPU or GPU: the default JAX device is used and recorded, never forced.
"""

from __future__ import annotations

import argparse
import gc
from typing import Any

import jax
import jax.numpy as jnp
from _common import (
    compile_ahead,
    cpu_cache_info,
    device_memory_stats,
    environment_info,
    format_bytes,
    format_si,
    format_table,
    log,
    measure_program,
    publish,
    result_header,
    rss_bytes,
    summarize_trace,
)
from bench_env import batch_params, initial_state, make_rollout
from bench_train import bench_case, build_runner

from jaxcage.ppo.config import PPOConfig, load_config, parse_override
from jaxcage.ppo.train import make_chunk
from jaxcage.ppo.train import make_rollout as make_ppo_rollout

SATURATION = 0.9  # a sweep "saturates" at the first size within 10% of its best steps/s


# --------------------------------------------------------------------------------------------
# Programs
# --------------------------------------------------------------------------------------------


def env_program(num_envs: int, num_seeds: int, args: argparse.Namespace) -> tuple[Any, tuple]:
    """Random-policy rollout of ``num_seeds`` x ``num_envs`` envs: ``(jitted, first args)``."""
    params, batched = batch_params("b_line", "sleep", 100, num_envs)
    state = initial_state(num_envs, params, batched)
    rollout = make_rollout(num_envs, args.steps, batched)
    if num_seeds == 1:
        return rollout, (jax.random.key(args.seed), state, params)
    states = jax.tree.map(lambda x: jnp.broadcast_to(x, (num_seeds, *x.shape)), state)
    keys = jax.random.split(jax.random.key(args.seed), num_seeds)
    program = jax.jit(jax.vmap(rollout, in_axes=(0, 0, None)), donate_argnums=1)
    return program, (keys, states, params)


def rollout_program(cfg: PPOConfig) -> Any:
    """The trainer's rollout (``collect`` with the policy) and GAE, without the SGD epochs.

    ``(runner) -> (runner with new envs and key, checksum)``, vmapped over the seed axis.
    """
    collect_and_gae = make_ppo_rollout(cfg)

    def rollout(runner: Any) -> tuple[Any, jax.Array]:
        key, key_roll = jax.random.split(runner.key)
        envs, traj, advantages, returns = collect_and_gae(
            key_roll, runner.train_state.params, runner.envs
        )
        # Everything the update would read, reduced so XLA cannot drop it.
        read = [advantages, returns, traj.log_probs, traj.actions, *jax.tree.leaves(traj.inputs)]
        checksum = sum(x.sum().astype(jnp.float32) for x in read)
        return runner.replace(envs=envs, key=key), checksum

    return jax.jit(jax.vmap(rollout), donate_argnums=0)


def time_program(
    program: Any, call_args: tuple, steps_per_call: int, repeats: int, carry: Any
) -> dict[str, Any]:
    """Compile, check memory, warm up and time ``program``; a JSON record."""
    record, _, handle = measure_program(
        lambda: (program, call_args, {"steps_per_call": steps_per_call}), repeats, carry=carry
    )
    if handle is not None:
        record.update(
            steps_per_s=steps_per_call / record["median_s"],
            rss=rss_bytes(),
            device_memory=device_memory_stats(),
        )
    return record


# --------------------------------------------------------------------------------------------
# Parts
# --------------------------------------------------------------------------------------------


def env_case(num_envs: int, num_seeds: int, args: argparse.Namespace) -> dict[str, Any]:
    program, call_args = env_program(num_envs, num_seeds, args)
    record = {"num_envs": num_envs, "num_seeds": num_seeds}
    record |= time_program(
        program,
        call_args,
        num_envs * num_seeds * args.steps,
        args.repeats,
        carry=lambda out, prev: (out[0], out[1], prev[2]),
    )
    return record


def train_case(
    base: PPOConfig, num_envs: int, num_seeds: int, args: argparse.Namespace
) -> dict[str, Any]:
    ns = argparse.Namespace(min_steps_per_call=args.min_steps_per_call, repeats=args.repeats)
    label = "train" if num_seeds == 1 else f"train seeds={num_seeds}"
    return bench_case(label, base, {"num_envs": num_envs, "num_seeds": num_seeds}, ns)


def breakdown(base: PPOConfig, num_envs: int, args: argparse.Namespace) -> dict[str, Any]:
    """Env-only vs rollout vs full update for the same ``num_envs`` x ``num_steps`` env steps."""
    cfg = base.replace(num_envs=num_envs, num_seeds=1)
    steps = cfg.batch_size
    env_ns = argparse.Namespace(steps=cfg.num_steps, seed=args.seed)
    program, call_args = env_program(num_envs, 1, env_ns)
    env = time_program(
        program, call_args, steps, args.repeats, carry=lambda o, p: (o[0], o[1], p[2])
    )
    del program, call_args
    runner, _, _ = build_runner(cfg)
    rollout = time_program(
        rollout_program(cfg), (runner,), steps, args.repeats, carry=lambda o, p: (o[0],)
    )
    runner, _, _ = build_runner(cfg)
    update = time_program(
        jax.jit(jax.vmap(make_chunk(cfg, 1)), donate_argnums=0),
        (runner,),
        steps,
        args.repeats,
        carry=lambda o, p: (o[0],),
    )
    out: dict[str, Any] = {
        "num_envs": num_envs,
        "num_steps": cfg.num_steps,
        "env_steps": steps,
        "env_only": env,
        "rollout": rollout,
        "update": update,
    }
    if all(r["status"] == "ok" for r in (env, rollout, update)):
        t_env, t_roll, t_upd = env["median_s"], rollout["median_s"], update["median_s"]
        out["seconds"] = {
            "env (random policy)": t_env,
            "policy in the rollout (+ GAE)": t_roll - t_env,
            "SGD epochs (update - rollout)": t_upd - t_roll,
            "full update": t_upd,
        }
        out["share_of_update"] = {
            "env": t_env / t_upd,
            "policy_rollout": (t_roll - t_env) / t_upd,
            "sgd_epochs": (t_upd - t_roll) / t_upd,
        }
    return out


def profile_chunk(base: PPOConfig, num_envs: int, directory: str) -> dict[str, Any]:
    """A profiler trace of one training chunk (one update) and its summary."""
    cfg = base.replace(num_envs=num_envs, num_seeds=1)
    runner, _, _ = build_runner(cfg)
    compiled, _ = compile_ahead(jax.jit(jax.vmap(make_chunk(cfg, 1)), donate_argnums=0), runner)
    runner, _ = jax.block_until_ready(compiled(runner))  # warm-up
    with jax.profiler.trace(directory):
        jax.block_until_ready(compiled(runner))
    return {"dir": directory, "num_envs": num_envs, "summary": summarize_trace(directory)}


def saturation(records: list[dict[str, Any]], key: str) -> dict[str, Any] | None:
    """The best steps/s of a sweep and the smallest ``key`` value reaching 90% of it."""
    ok = [r for r in records if r.get("status") == "ok"]
    if not ok:
        return None
    best = max(ok, key=lambda r: r["steps_per_s"])
    first = min(
        (r for r in ok if r["steps_per_s"] >= SATURATION * best["steps_per_s"]),
        key=lambda r: r[key],
    )
    return {
        "best_steps_per_s": best["steps_per_s"],
        f"best_{key}": best[key],
        "saturates_at": first[key],
    }


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    add = parser.add_argument
    add("--config", default="default", help="training config (default: %(default)s)")
    add("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a training-config field (repeatable)")  # fmt: skip
    add("--env-num-envs", type=int, nargs="*", default=[1, 16, 256, 1024, 4096, 16384, 65536],
        metavar="N", help="env-only num_envs sweep (default: %(default)s)")  # fmt: skip
    add("--env-seeds", type=int, nargs="*", default=[4, 16], metavar="S",
        help="env-only num_seeds (> 1) at --env-seeds-num-envs (default: %(default)s)")  # fmt: skip
    add("--env-seeds-num-envs", type=int, default=1024, metavar="N")
    add("--train-num-envs", type=int, nargs="*", default=[16, 64, 256, 1024, 4096],
        metavar="N", help="training num_envs sweep (default: %(default)s)")  # fmt: skip
    add("--train-seeds", type=int, nargs="*", default=[2, 4, 8], metavar="S",
        help="training num_seeds (> 1) at --train-seeds-num-envs (default: %(default)s)",
    )  # fmt: skip
    add("--train-seeds-num-envs", type=int, default=256, metavar="N")
    add("--breakdown-num-envs", type=int, default=1024, metavar="N",
        help="num_envs of the env / rollout / update breakdown (default: %(default)s)")  # fmt: skip
    add("--no-breakdown", action="store_true", help="skip the breakdown")
    add("--steps", type=int, default=100, help="env-only steps per env per call (default: 100)")
    add("--min-steps-per-call", type=int, default=100_000,
        help="training: updates per call chosen to take at least this many env steps")  # fmt: skip
    add("--repeats", type=int, default=3, help="timed calls per case; median (default: 3)")
    add("--seed", type=int, default=0)
    add("--profile", metavar="DIR", help="write a JAX profiler trace of one training chunk here")
    add("--profile-num-envs", type=int, default=1024, metavar="N")
    add("--out", help="write the JSON here (default: print it after the table)")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.steps < 1 or args.min_steps_per_call < 1:
        parser.error("--repeats, --steps and --min-steps-per-call must be >= 1")
    sizes = [*args.env_num_envs, *args.env_seeds, *args.train_num_envs, *args.train_seeds]
    if any(n < 1 for n in sizes):
        parser.error("sizes and seed counts must be >= 1")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    environment = environment_info()
    environment["cpu_caches"] = cpu_cache_info()
    log(f"jax {environment['jax']} on {environment['devices']} ({environment['cpu_count']} CPUs)")
    base = load_config(args.config, **dict(parse_override(o) for o in args.overrides))

    env_records: list[dict[str, Any]] = []
    for n in args.env_num_envs:
        env_records.append(env_case(n, 1, args))
        log(f"env-only num_envs={n}: {_rate(env_records[-1])}")
        gc.collect()
    env_seed_records: list[dict[str, Any]] = []
    for s in args.env_seeds:
        env_seed_records.append(env_case(args.env_seeds_num_envs, s, args))
        rate = _rate(env_seed_records[-1])
        log(f"env-only num_envs={args.env_seeds_num_envs} x seeds={s}: {rate}")
        gc.collect()

    train_records: list[dict[str, Any]] = []
    for n in args.train_num_envs:
        train_records.append(train_case(base, n, 1, args))
        log(f"training num_envs={n}: {_rate(train_records[-1])}")
        gc.collect()
    train_seed_records: list[dict[str, Any]] = []
    for s in args.train_seeds:
        train_seed_records.append(train_case(base, args.train_seeds_num_envs, s, args))
        log(f"training num_envs={args.train_seeds_num_envs} x seeds={s}: "
            f"{_rate(train_seed_records[-1])}")  # fmt: skip
        gc.collect()

    parts = None
    if not args.no_breakdown:
        log(f"breakdown at num_envs={args.breakdown_num_envs} ...")
        parts = breakdown(base, args.breakdown_num_envs, args)
        gc.collect()

    profile = None
    if args.profile:
        log(f"profiling one training chunk at num_envs={args.profile_num_envs} -> {args.profile}")
        profile = profile_chunk(base, args.profile_num_envs, args.profile)

    result = {
        **result_header("scaling", args, environment),
        "training_config": base.to_dict(),
        "env_only": {
            "num_envs": env_records,
            "num_seeds": env_seed_records,
            "saturation_num_envs": saturation(env_records, "num_envs"),
        },
        "training": {
            "num_envs": train_records,
            "num_seeds": train_seed_records,
            "saturation_num_envs": saturation(train_records, "num_envs"),
        },
        "breakdown": parts,
        "profile": profile,
    }
    publish(render_table(result), result, args.out)
    return result


def _rate(record: dict[str, Any]) -> str:
    if record.get("status") != "ok":
        return f"skipped ({record.get('note', '')})"
    return f"{format_si(record['steps_per_s'])} steps/s, compile {record['compile_s']:.1f} s"


def _mem(record: dict[str, Any]) -> tuple[str, str]:
    memory = record.get("memory") or {}
    rss = (record.get("rss") or {}).get("current")
    return (
        format_bytes(memory["total"]) if "total" in memory else "-",
        format_bytes(rss) if rss else "-",
    )


def render_table(result: dict[str, Any]) -> str:
    env = result["environment"]
    lines = [
        f"jaxcage scaling on {env['device_kind']} ({env['backend']}), jax {env['jax']}, "
        f"{env['cpu_count']} CPUs, caches {env.get('cpu_caches') or '-'}, "
        f"load {env['load_average']} -> {result['load_average_end']}"
    ]
    header = ["part", "num_envs", "seeds", "steps/s", "compile s", "XLA memory", "RSS after"]
    rows = []
    for part, key in (("env-only", "env_only"), ("training", "training")):
        for r in result[key]["num_envs"] + result[key]["num_seeds"]:
            ok = r.get("status") == "ok"
            rows.append(
                [
                    part,
                    r["num_envs"],
                    r["num_seeds"],
                    format_si(r["steps_per_s"]) if ok else "skipped",
                    f"{r['compile_s']:.1f}" if "compile_s" in r else "-",
                    *_mem(r),
                ]
            )
    lines.append(format_table(rows, header))
    for part, key in (("env-only", "env_only"), ("training", "training")):
        sat = result[key]["saturation_num_envs"]
        if sat:
            lines.append(
                f"{part}: best {format_si(sat['best_steps_per_s'])} steps/s at num_envs="
                f"{sat['best_num_envs']}; within 10% of it from num_envs={sat['saturates_at']}"
            )
    parts = result["breakdown"]
    if parts and "seconds" in parts:
        lines.append(
            f"breakdown of one update at num_envs={parts['num_envs']} "
            f"({parts['env_steps']:,} env steps):"
        )
        total = parts["seconds"]["full update"]
        for name, seconds in parts["seconds"].items():
            lines.append(f"  {name:<32} {seconds:8.3f} s  {100 * seconds / total:5.1f}%")
    profile = result["profile"]
    if profile and profile["summary"]:
        summary = profile["summary"]
        work = summary["work_s"]
        lines.append(
            f"profile of one update at num_envs={profile['num_envs']} ({profile['dir']}): "
            f"span {summary['span_s']:.2f} s, worker threads busy "
            f"{', '.join(f'{b:.2f}' for b in summary['busy_s_per_thread'])} s, "
            f"k threads busy at once: {summary['seconds_with_k_threads_busy']}"
        )
        for cat, seconds in summary["categories_s"].items():
            if cat.startswith("wait"):
                continue
            lines.append(f"  {cat:<36} {seconds:8.3f} s  {100 * seconds / work:5.1f}% of op time")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
