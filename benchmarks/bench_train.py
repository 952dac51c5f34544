"""Training throughput: end-to-end PPO env-steps/s of jaxcage's trainer, against CybORG's raw rate.

Each case is one ``PPOConfig`` (``--config``, default ``configs/default.yaml``: 100-step rollouts,
4 epochs x 4 minibatches, a 64x64 actor and critic, the default policy-input features), changed
only in ``num_envs`` / ``num_seeds``. The program timed is exactly what ``jaxcage train`` runs: a
chunk of ``updates`` PPO updates (rollout + GAE + K epochs of minibatch SGD) in a ``lax.scan``,
vmapped over seeds, with the runner state donated (``jax.jit(jax.vmap(make_chunk(cfg, n)))``).
Per case:

* ``init_compile_s`` / ``init_run_s``: compiling and running ``make_init`` (network + env reset);
* ``compile_s``: ``lower().compile()`` of the chunk program;
* ``time_to_first_update_s``: init + compile + the first call's time per update (what a user
  waits before the first update is done; the compile cache is not used);
* steady state: ``--repeats`` further calls, each closed by ``jax.block_until_ready``; the median
  gives ``steps_per_s`` = updates x num_envs x num_steps x num_seeds / seconds.

``updates`` per call is chosen so one call takes at least ``--min-steps-per-call`` env steps.
Besides the ``--num-envs`` sweep it measures ``num_seeds`` > 1 (``--seeds`` at
``--seeds-num-envs``) and the named configs of ``--extra-configs`` at their own settings
(default: ``guide``, the acceleration guide's 200 envs x 50 steps). In the same run, CybORG's
single-process stepping rate (random Blue, B_line) is measured for ``--cyborg-seconds`` (half
before, half after the jaxcage timings) and each rate is divided by it: CybORG's raw stepping rate
bounds any CybORG-based trainer from above (it would still have to run the network and the
update).

Usage::

    python benchmarks/bench_train.py --out benchmarks/results/bench_train_cpu.json
    python benchmarks/bench_train.py --num-envs 4096 16384 65536 --seeds --extra-configs
    python benchmarks/bench_train.py --num-envs 64 --min-steps-per-call 1 --repeats 1 --no-cyborg

Runs unchanged on CPU or GPU, on every device JAX sees, placed as the trainer places them
(``jaxcage.sharding``; recorded as ``placement``); ``--set num_devices=1`` measures one device.
"""

from __future__ import annotations

import argparse
import gc
import math
import time
from typing import Any

import jax
import jax.numpy as jnp
from _common import (
    add_cyborg_arguments,
    attach_cyborg_ratios,
    bracket_cyborg,
    compile_ahead,
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
    rss_bytes,
)

from jaxcage import sharding as shd
from jaxcage.ppo.config import PPOConfig, load_config, parse_override
from jaxcage.ppo.train import make_chunk, make_init, place, runner_shardings, seed_keys

DEFAULT_NUM_ENVS = (64, 256, 1024, 4096, 16384)


def case_config(base: PPOConfig, updates: int, repeats: int, **changes: Any) -> PPOConfig:
    """``base`` with ``changes``, its run length set to the updates this benchmark executes (so
    the learning-rate schedule spans the benchmark instead of ending inside it)."""
    cfg = base.replace(**changes)
    total = cfg.batch_size * updates * (repeats + 1)
    return cfg.replace(total_timesteps=total)


def updates_per_call(cfg: PPOConfig, min_steps: int) -> int:
    """Updates per timed call so that a call takes at least ``min_steps`` env steps."""
    return max(1, math.ceil(min_steps / (cfg.batch_size * cfg.num_seeds)))


def describe(cfg: PPOConfig) -> dict[str, Any]:
    """The fields that set a training program's size."""
    return {
        "num_envs": cfg.num_envs,
        "num_steps": cfg.num_steps,
        "num_seeds": cfg.num_seeds,
        "update_epochs": cfg.update_epochs,
        "num_minibatches": cfg.num_minibatches,
        "minibatch_size": cfg.minibatch_size,
        "hidden_sizes": list(cfg.hidden_sizes),
        "features": list(cfg.features),
        "red_agents": list(cfg.red_agents),
    }


def build_runner(cfg: PPOConfig) -> tuple[Any, float, float]:
    """Compile ``make_init`` once and run it for every seed: ``(runner, compile_s, run_s)``.

    The runner has a leading ``(num_seeds,)`` axis, as ``jax.vmap(make_init(cfg))`` gives; it is
    built seed by seed and stacked because, on jax 0.10.2's CPU backend, the seed-vmapped init of
    the default network (batched LAPACK QR for the orthogonal initialiser) can hang for ever in
    ``block_until_ready`` (seen with 2 and 3 seeds; see BENCHMARKS.md).
    """
    compiled, compile_s = compile_ahead(jax.jit(make_init(cfg)), jax.random.key(0))
    start = time.perf_counter()
    runners = [compiled(k) for k in seed_keys(cfg)]
    runner = jax.block_until_ready(jax.tree.map(lambda *xs: jnp.stack(xs), *runners))
    return runner, compile_s, time.perf_counter() - start


def bench_case(
    label: str, base: PPOConfig, changes: dict[str, Any], args: argparse.Namespace
) -> dict[str, Any]:
    """Measure one training configuration; skipped (with a note) if it does not fit in memory."""
    probe = base.replace(**changes)
    updates = updates_per_call(probe, args.min_steps_per_call)
    cfg = case_config(base, updates, args.repeats, **changes)
    steps_per_call = updates * cfg.batch_size * cfg.num_seeds
    record: dict[str, Any] = {
        "case": label,
        **describe(cfg),
        "updates_per_call": updates,
        "steps_per_call": steps_per_call,
    }

    def prepare() -> tuple[Any, tuple[Any, ...], dict[str, Any]]:
        runner, init_compile_s, init_run_s = build_runner(cfg)
        # The trainer's placement (jaxcage.sharding): every device JAX sees, seeds or envs split.
        placement = place(cfg)
        shardings = runner_shardings(placement, runner)
        runner = shd.put(shd.fetch(runner), shardings)
        chunk = jax.jit(
            jax.vmap(make_chunk(cfg, updates, placement=placement)),
            in_shardings=(shardings,),
            out_shardings=(shardings, placement.replicated),
            donate_argnums=0,
        )
        facts = {
            "init_compile_s": init_compile_s,
            "init_run_s": init_run_s,
            "placement": placement.describe(),
            "layout": placement.layout,
        }
        return chunk, (runner,), facts

    timed, out, handle = measure_program(prepare, args.repeats, carry=lambda out, prev: (out[0],))
    record.update(timed)
    if handle is None:
        return record
    metrics = jax.device_get(out[1])
    median, fastest_s = record["median_s"], record["min_s"]
    record.update(
        time_to_first_update_s=(
            record["init_compile_s"]
            + record["init_run_s"]
            + record["compile_s"]
            + record["first_run_s"] / updates
        ),
        steps_per_s=steps_per_call / median,
        steps_per_s_max=steps_per_call / fastest_s,
        seconds_per_update=median / updates,
        rss=rss_bytes(),
        # Sanity: the last update's mean training return (a broken trainer shows up here).
        last_return_mean=float(metrics["return_mean"].reshape(-1)[-1]),
    )
    return record


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--config", default="default", help="base config (default: %(default)s)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field for every case (repeatable), e.g. --set num_minibatches=8",
    )
    parser.add_argument(
        "--num-envs",
        type=int,
        nargs="*",
        default=list(DEFAULT_NUM_ENVS),
        metavar="N",
        help="num_envs values to measure with one seed (default: %(default)s)",
    )
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="*",
        default=[4],
        metavar="S",
        help="num_seeds values (> 1) measured at --seeds-num-envs; none: skip (default: 4)",
    )
    parser.add_argument(
        "--seeds-num-envs",
        type=int,
        nargs="*",
        default=[256],
        metavar="N",
        help="num_envs for the --seeds cases (default: %(default)s)",
    )
    parser.add_argument(
        "--extra-configs",
        nargs="*",
        default=["guide"],
        metavar="NAME",
        help="named configs also measured at their own settings (default: guide)",
    )
    parser.add_argument(
        "--min-steps-per-call",
        type=int,
        default=250_000,
        help="updates per timed call are chosen to take at least this many env steps",
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed calls per case; median reported (default: 3)"
    )
    add_cyborg_arguments(parser)
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    if args.min_steps_per_call < 1:
        parser.error("--min-steps-per-call must be >= 1")
    if any(n < 1 for n in [*args.num_envs, *args.seeds_num_envs]):
        parser.error("--num-envs / --seeds-num-envs values must be >= 1")
    if any(s < 1 for s in args.seeds):
        parser.error("--seeds values must be >= 1")
    return args


def cases(args: argparse.Namespace) -> list[tuple[str, PPOConfig, dict[str, Any]]]:
    """``(label, base config, changes)`` for every case of the run, in order."""
    overrides = dict(parse_override(o) for o in args.overrides)
    base = load_config(args.config, **overrides)
    out: list[tuple[str, PPOConfig, dict[str, Any]]] = []
    for n in args.num_envs:
        out.append((args.config, base, {"num_envs": n, "num_seeds": 1}))
    for s in args.seeds:
        for n in args.seeds_num_envs:
            out.append((f"{args.config} seeds={s}", base, {"num_envs": n, "num_seeds": s}))
    for name in args.extra_configs:
        out.append((name, load_config(name, **overrides), {}))
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    environment = environment_info()
    log(f"jax {environment['jax']} on {environment['devices']} ({environment['cpu_count']} CPUs)")

    cyborg_before = measure_cyborg(args, share=0.5)
    records: list[dict[str, Any]] = []
    for label, base, changes in cases(args):
        log(f"{label} {changes}: compiling and timing {args.repeats} calls ...")
        record = bench_case(label, base, changes, args)
        records.append(record)
        if record["status"] == "ok":
            log(
                f"  {format_si(record['steps_per_s'])} steps/s "
                f"({record['updates_per_call']} updates/call, "
                f"{record['seconds_per_update']:.3f} s/update), compile {record['compile_s']:.1f} s"
            )
        else:
            log(f"  skipped: {record['note']}")
        gc.collect()

    cyborg = bracket_cyborg(cyborg_before, measure_cyborg(args, share=0.5))
    attach_cyborg_ratios(records, cyborg)
    ok = [r for r in records if r["status"] == "ok"]
    default_case = next(
        (
            r
            for r in ok
            if r["case"] == args.config
            and r["num_envs"] == load_config(args.config).num_envs
            and r["num_seeds"] == 1
        ),
        None,
    )
    result = {
        **result_header("train_throughput", args, environment),
        "cases": records,
        "cyborg": cyborg,
        "best": fastest(records, ["case", "num_envs", "num_seeds"]),
        "default": None
        if default_case is None
        else {
            "num_envs": default_case["num_envs"],
            "steps_per_s": default_case["steps_per_s"],
            "ratio_vs_cyborg": default_case.get("ratio_vs_cyborg"),
        },
    }
    publish(render_table(result), result, args.out)
    return result


def render_table(result: dict[str, Any]) -> str:
    """The human-readable summary printed to stdout."""
    rows = []
    for r in result["cases"]:
        head = [r["case"], r["num_envs"], r["num_seeds"], r["num_steps"]]
        if r["status"] != "ok":
            rows.append([*head, "-", "-", "-", "-", "-", "-", r.get("note", "")])
            continue
        ratio = r.get("ratio_vs_cyborg")
        rows.append(
            [
                *head,
                r["updates_per_call"],
                f"{r['compile_s']:.1f}",
                f"{r['time_to_first_update_s']:.1f}",
                f"{r['seconds_per_update']:.3f}",
                format_si(r["steps_per_s"]),
                "-" if ratio is None else f"{ratio:,.0f}x",
                "",
            ]
        )
    header = [
        "case",
        "num_envs",
        "seeds",
        "T",
        "upd/call",
        "compile s",
        "1st update s",
        "s/update",
        "steps/s",
        "vs CybORG",
        "note",
    ]
    env = result["environment"]
    lines = [
        f"jaxcage PPO training throughput (rollout + GAE + update), median of "
        f"{result['config']['repeats']} calls",
        f"device: {env['device_kind']} ({env['backend']}), jax {env['jax']}, "
        f"{env['cpu_count']} CPUs, load {format_load(env['load_average'])} -> "
        f"{format_load(result['load_average_end'])}",
        format_table(rows, header),
    ]
    lines.append(cyborg_line(result["cyborg"], "CybORG raw stepping"))
    for key, name in (("default", "default config"), ("best", "best")):
        rec = result[key]
        if rec is not None:
            ratio = rec["ratio_vs_cyborg"]
            lines.append(
                f"{name}: {format_si(rec['steps_per_s'])} training steps/s at "
                f"num_envs={rec['num_envs']}"
                + ("" if ratio is None else f", {ratio:,.0f}x CybORG's raw stepping")
            )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
