"""Time-to-score: wall time and env steps until PPO's B_line-100 evaluation score reaches targets.

For each config the trainer's own pieces run a host loop: ``make_init``, then compiled chunks of
``--eval-every`` updates (``jax.jit(jax.vmap(make_chunk(cfg, n)))``, runner donated, exactly what
``jaxcage train`` executes), and between chunks the current policy is scored with
``jaxcage.evaluation.evaluate``: deterministic (argmax) policy, jaxcage engine, B_line red agent,
100-step episodes, ``--episodes`` episodes (the CAGE2 B_line-100 cell). Evaluation time is measured
and reported but excluded from the training wall time; compilation is reported separately and
included in ``wall_s`` (what a user waits, minus evaluation). For every threshold
(``--thresholds``, default -100 -30 -20 -15) the first evaluation at or above it is recorded:
update, env steps, training seconds, and wall seconds.

Training runs to the end of each config (its learning-rate schedule is part of the config), or
until ``--max-wall`` seconds of wall time (evaluation included) have passed, or, with
``--stop-at-last``, until the last threshold is reached. A PNG plots the score against wall
time and against env steps for all configs (``--plot``).

A config is a name (``configs/NAME.yaml``) or a YAML path, optionally followed by overrides:
``NAME:key=value;key=value`` (values read as YAML), e.g. ``b_line:total_timesteps=4e6;lr=1e-3``.
``num_seeds`` is forced to 1.

Usage::

    python benchmarks/time_to_score.py --configs default --out benchmarks/results/tts.json \\
        --plot benchmarks/results/tts.png
    python benchmarks/time_to_score.py --configs default "b_line:total_timesteps=4e6" \\
        --eval-every 5 --episodes 200 --max-wall 900

Runs unchanged on CPU or GPU: the default JAX device is used and recorded, never forced.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import jax
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the Agg backend)
from _common import environment_info, format_si, format_table, log, publish, result_header  # noqa: E402
from bench_train import build_runner  # noqa: E402

from jaxcage.evaluation import evaluate  # noqa: E402
from jaxcage.ppo.config import PPOConfig, load_config, parse_override  # noqa: E402
from jaxcage.ppo.train import chunk_size, make_chunk  # noqa: E402

DEFAULT_THRESHOLDS = (-100.0, -30.0, -20.0, -15.0)
EVAL_RED = "b_line"
EVAL_STEPS = 100


def parse_config_spec(spec: str) -> tuple[str, PPOConfig]:
    """``NAME[:k=v;k=v]`` -> ``(label, config)`` with ``num_seeds`` forced to 1."""
    name, _, rest = spec.partition(":")
    overrides = dict(parse_override(part) for part in rest.split(";") if part.strip())
    overrides["num_seeds"] = 1
    return spec, load_config(name, **overrides)


def score(params: Any, cfg: PPOConfig, episodes: int, seed: int) -> tuple[float, float, float]:
    """``(mean, std, seconds)`` of the deterministic B_line-100 evaluation (jaxcage engine)."""
    start = time.perf_counter()
    table = evaluate(
        params,
        engine="jax",
        episodes=episodes,
        deterministic=True,
        seed=seed,
        cfg=cfg,
        reds=(EVAL_RED,),
        steps=(EVAL_STEPS,),
    )
    cell = table.cells[(EVAL_RED, EVAL_STEPS)]
    return cell["mean"], cell["std"], time.perf_counter() - start


def run_config(label: str, cfg: PPOConfig, args: argparse.Namespace) -> dict[str, Any]:
    """Train ``cfg`` with evaluations every ``--eval-every`` updates; the config's record."""
    thresholds = sorted(args.thresholds)
    start = time.perf_counter()
    eval_total = 0.0
    runner, init_compile_s, init_run_s = build_runner(cfg)
    compile_s = init_compile_s
    train_s = init_run_s
    programs: dict[int, Any] = {}

    def program(n: int) -> Any:
        nonlocal compile_s
        if n not in programs:
            t0 = time.perf_counter()
            chunk = jax.jit(jax.vmap(make_chunk(cfg, n)), donate_argnums=0)
            programs[n] = chunk.lower(runner).compile()
            compile_s += time.perf_counter() - t0
        return programs[n]

    # Evaluate every `eval_every` updates, moved to a nearby divisor of the run's update count
    # (the trainer's own chunking rule) so a shorter last chunk costs no second compilation.
    eval_every = chunk_size(cfg.replace(updates_per_chunk=args.eval_every))
    points: list[dict[str, Any]] = []
    reached: dict[float, dict[str, Any]] = {}

    def record(update: int) -> None:
        nonlocal eval_total
        params = jax.tree.map(lambda x: x[0], runner.train_state.params)
        mean, std, eval_s = score(params, cfg, args.episodes, args.eval_seed)
        eval_total += eval_s
        point = {
            "update": update,
            "env_steps": update * cfg.batch_size,
            "train_s": train_s,
            "compile_s": compile_s,
            "wall_s": train_s + compile_s,
            "eval_s": eval_s,
            "elapsed_s": time.perf_counter() - start,
            "score": mean,
            "score_std": std,
        }
        points.append(point)
        for t in thresholds:
            if t not in reached and mean >= t:
                reached[t] = {k: point[k] for k in ("update", "env_steps", "train_s", "wall_s")}
                reached[t]["score"] = mean
        log(
            f"  update {update:5d}  {format_si(point['env_steps']):>6} steps  "
            f"train {train_s:7.1f} s  compile {compile_s:5.1f} s  "
            f"B_line-100 {mean:8.2f} ± {std:5.2f}  (eval {eval_s:.2f} s)"
        )

    record(0)
    done = 0
    stop_reason = "end of run"
    while done < cfg.num_updates:
        if time.perf_counter() - start >= args.max_wall:
            stop_reason = f"--max-wall {args.max_wall:g} s"
            break
        if args.stop_at_last and len(reached) == len(thresholds):
            stop_reason = "last threshold reached (--stop-at-last)"
            break
        n = min(eval_every, cfg.num_updates - done)
        fn = program(n)
        t0 = time.perf_counter()
        runner, _ = jax.block_until_ready(fn(runner))
        train_s += time.perf_counter() - t0
        done += n
        record(done)

    return {
        "label": label,
        "config": cfg.to_dict(),
        "num_updates_planned": cfg.num_updates,
        "eval_every": eval_every,
        "updates_done": done,
        "env_steps": done * cfg.batch_size,
        "stop_reason": stop_reason,
        "init_compile_s": init_compile_s,
        "compile_s": compile_s,
        "train_s": train_s,
        "eval_total_s": eval_total,
        "elapsed_s": time.perf_counter() - start,
        "train_steps_per_s": done * cfg.batch_size / max(train_s - init_run_s, 1e-9),
        "final_score": points[-1]["score"],
        "best_score": max(p["score"] for p in points),
        "thresholds": {
            str(t): reached.get(t, {"reached": False}) | ({"reached": True} if t in reached else {})
            for t in thresholds
        },
        "points": points,
    }


def plot(path: str, result: dict[str, Any]) -> None:
    """Score against wall time (compile included, evaluation excluded) and against env steps."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for rec in result["runs"]:
        pts = rec["points"]
        for ax, key in zip(axes, ("wall_s", "env_steps"), strict=True):
            ax.plot(
                [p[key] for p in pts], [p["score"] for p in pts], marker=".", label=rec["label"]
            )
    for ax in axes:
        for t in result["config"]["thresholds"]:
            ax.axhline(t, color="grey", lw=0.7, ls="--")
        ax.set_ylabel(
            f"B_line-{EVAL_STEPS} score (deterministic, {result['config']['episodes']} ep)"
        )
        ax.set_ylim(bottom=max(-250, min(p["score"] for r in result["runs"] for p in r["points"])))
        ax.grid(alpha=0.3)
    axes[0].set_xlabel("wall time, s (compile included, evaluation excluded)")
    axes[0].set_title("scores below -250 (untrained policies) are off the chart", fontsize=8)
    axes[1].set_xlabel("env steps")
    axes[1].legend(fontsize=8)
    env = result["environment"]
    fig.suptitle(f"jaxcage PPO time-to-score on {env['device_kind']} ({env['backend']})")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--configs",
        nargs="+",
        default=["default"],
        metavar="SPEC",
        help="configs to train: NAME or PATH, optionally :k=v;k=v overrides (default: default)",
    )
    parser.add_argument(
        "--eval-every", type=int, default=5, help="updates between evaluations (default: 5)"
    )
    parser.add_argument(
        "--episodes", type=int, default=200, help="evaluation episodes (default: 200)"
    )
    parser.add_argument("--eval-seed", type=int, default=0, help="evaluation seed (default: 0)")
    parser.add_argument(
        "--thresholds",
        type=float,
        nargs="+",
        default=list(DEFAULT_THRESHOLDS),
        help="scores to reach (default: %(default)s)",
    )
    parser.add_argument(
        "--max-wall",
        type=float,
        default=900.0,
        help="cap on each config's wall time in seconds, evaluation included (default: 900)",
    )
    parser.add_argument(
        "--stop-at-last", action="store_true", help="stop a config once every threshold is reached"
    )
    parser.add_argument("--out", help="write the JSON here (default: print it after the table)")
    parser.add_argument("--plot", help="write the PNG here")
    args = parser.parse_args(argv)
    if args.eval_every < 1 or args.episodes < 2:
        parser.error("--eval-every must be >= 1 and --episodes >= 2")
    if args.max_wall <= 0:
        parser.error("--max-wall must be > 0")
    return args


def render_table(result: dict[str, Any]) -> str:
    thresholds = sorted(result["config"]["thresholds"])
    rows = []
    for rec in result["runs"]:
        for t in thresholds:
            hit = rec["thresholds"][str(t)]
            if hit["reached"]:
                rows.append(
                    [
                        rec["label"],
                        f"{t:g}",
                        hit["update"],
                        format_si(hit["env_steps"]),
                        f"{hit['train_s']:.1f}",
                        f"{hit['wall_s']:.1f}",
                        f"{hit['score']:.2f}",
                    ]
                )
            else:
                rows.append([rec["label"], f"{t:g}", "-", "-", "-", "-", "not reached"])
    env = result["environment"]
    lines = [
        f"time to B_line-{EVAL_STEPS} score (deterministic, jaxcage engine, "
        f"{result['config']['episodes']} episodes, every {result['config']['eval_every']} "
        "updates); wall = training + compile, evaluation excluded",
        f"device: {env['device_kind']} ({env['backend']}), jax {env['jax']}, "
        f"{env['cpu_count']} CPUs, load {env['load_average']}",
        format_table(
            rows, ["config", "target", "update", "env steps", "train s", "wall s", "score"]
        ),
    ]
    for rec in result["runs"]:
        lines.append(
            f"{rec['label']}: {rec['updates_done']}/{rec['num_updates_planned']} updates "
            f"({rec['stop_reason']}), {format_si(rec['train_steps_per_s'])} training steps/s, "
            f"compile {rec['compile_s']:.1f} s, evaluation {rec['eval_total_s']:.1f} s in all, "
            f"final {rec['final_score']:.2f}, best {rec['best_score']:.2f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    environment = environment_info()
    log(f"jax {environment['jax']} on {environment['devices']} ({environment['cpu_count']} CPUs)")
    specs = [parse_config_spec(s) for s in args.configs]
    runs = []
    for label, cfg in specs:
        log(
            f"{label}: {cfg.num_envs} envs x {cfg.num_steps} steps per update, "
            f"{cfg.num_updates} updates, {format_si(cfg.env_steps_per_seed)} env steps"
        )
        runs.append(run_config(label, cfg, args))
    result = {
        **result_header("time_to_score", args, environment),
        "evaluation": {
            "engine": "jax",
            "red": EVAL_RED,
            "steps": EVAL_STEPS,
            "deterministic": True,
            "episodes": args.episodes,
        },
        "runs": runs,
    }
    if args.plot:
        plot(args.plot, result)
        log(f"wrote {args.plot}")
    publish(render_table(result), result, args.out)
    return result


if __name__ == "__main__":
    main()
