"""The ``jaxcage`` console script: ``train``, ``eval``, ``losses``, ``export``, ``distill`` and
``workflows``.

::

    jaxcage train [--config configs/default.yaml] [--set key=value ...] [--out runs/<dir>]
                  [--resume] [--profile] [--quiet]
                  [--coordinator HOST:PORT --num-processes N --process-id I]
    jaxcage eval --run runs/<dir> [--engine jax|cyborg] [--episodes N] [--stochastic]
                 [--seed S] [--seed-index I] [--rules current|leaderboard|debugged]
    jaxcage losses --run runs/<dir> [--red b_line|meander|sleep] [--steps T] [--episodes N]
                   [--seed S] [--rules R] [--json FILE]
    jaxcage export --run runs/<dir> --out agents/<name> [--seed-index I] [--rules R]
                   [--specialist RED=PATH ...]
    jaxcage distill --run AGENT_OR_RUN --out agents/<name> [--teacher T] [--rules R] [--set k=v]
    jaxcage workflows search|sweep|baselines [--config NAME] [--set k=v] --out DIR

``train`` writes ``config.yaml``, ``metrics.csv``, ``checkpoint.npz`` and ``learning_curve.png``
into the run directory; ``eval`` prints the CAGE2 table and saves it as
``eval_<engine>_<deterministic|stochastic>.json`` next to the checkpoint; ``losses`` prints where
the defender's return goes on one cell (``jaxcage.losses``); ``export`` writes a
self-contained agent directory (``jaxcage.export``) that ``jaxcage.submission.BlueAgent`` loads
into CybORG's official evaluation loop, and that ``eval --run`` also accepts; ``distill`` teaches
a defender a privileged teacher's play by imitation (``jaxcage.distill``) and writes an agent
directory.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import jax
import numpy as np

from jaxcage.distill import cli as distill_cli
from jaxcage.evaluation import ENGINES, EVAL_REDS, EvalTable, evaluate, load_run
from jaxcage.export import AGENT_FILE, compose_switch, export_run, load_agent
from jaxcage.ppo import checkpoint as ckpt
from jaxcage.ppo.config import (
    PLACEMENT_FIELDS,
    PPOConfig,
    load_config,
    parse_override,
    without_host_fields,
)
from jaxcage.ppo.logging import config_diff
from jaxcage.ppo.train import train
from jaxcage.reference.cyborg_env import ReferenceNotInstalled
from jaxcage.rules import RULE_NAMES
from jaxcage.sharding import cluster_detected, is_writer
from jaxcage.sharding import initialize as initialize_distributed
from jaxcage.workflows import cli as workflows_cli


def _build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="jaxcage", description=(__doc__ or "").split("\n")[0])
    sub = p.add_subparsers(dest="command")

    t = sub.add_parser("train", help="train a PPO defender")
    t.add_argument(
        "--config",
        default=None,
        help="config name in configs/ or a YAML path (default: default; with --resume: the run's)",
    )
    t.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field (YAML value), repeatable: --set lr=1e-3 --set num_envs=64",
    )
    t.add_argument("--out", default=None, help="run directory (default: runs/<config>-<time>)")
    t.add_argument("--resume", action="store_true", help="continue from --out's checkpoint")
    t.add_argument("--profile", action="store_true", help="report compile/device/host time")
    t.add_argument("--quiet", action="store_true", help="no progress lines")
    _add_distributed_arguments(t)
    t.add_argument(
        "--eval-episodes",
        type=int,
        default=100,
        help="episodes per cell of the CAGE2 table (jaxcage engine) printed after training; "
        "0: skip (default 100)",
    )

    e = sub.add_parser("eval", help="print the CAGE2 evaluation table of a trained run")
    e.add_argument("--run", required=True, help="run directory written by `jaxcage train`")
    e.add_argument("--engine", choices=ENGINES, default="jax")
    e.add_argument("--episodes", type=int, default=100, help="episodes per cell (default 100)")
    e.add_argument("--stochastic", action="store_true", help="sample actions instead of argmax")
    e.add_argument("--seed", type=int, default=0, help="evaluation seed")
    e.add_argument(
        "--seed-index", type=int, default=None, help="which trained seed (default: best training)"
    )
    e.add_argument(
        "--rules",
        choices=RULE_NAMES,
        default=None,
        help="rule set (CybORG version) to score on: current (today's CybORG), leaderboard "
        "(commit 606813b; with --engine cyborg it needs that official CybORG importable) or "
        "debugged (CybORG++; with --engine cyborg $JAXCAGE_DEBUGGED_CYBORG); "
        "default: the run's training rules",
    )
    lo = sub.add_parser(
        "losses", help="split a defender's return on one cell into its sources (jaxcage)"
    )
    lo.add_argument("--run", required=True, help="run or exported agent directory")
    lo.add_argument("--red", choices=EVAL_REDS, default="b_line")
    lo.add_argument("--steps", type=int, default=100, help="episode length (default 100)")
    lo.add_argument("--episodes", type=int, default=1000, help="episodes (default 1000)")
    lo.add_argument("--seed", type=int, default=0, help="evaluation seed")
    lo.add_argument(
        "--rules", choices=RULE_NAMES, default=None, help="default: the run's training rules"
    )
    lo.add_argument("--json", default=None, metavar="FILE", help="also write the numbers here")
    x = sub.add_parser("export", help="write a trained run's defender as a CybORG agent directory")
    x.add_argument("--run", required=True, help="run directory written by `jaxcage train`")
    x.add_argument("--out", required=True, help="agent directory to write (agents/<name>)")
    x.add_argument(
        "--seed-index", type=int, default=None, help="which trained seed (default: best training)"
    )
    x.add_argument(
        "--rules",
        choices=RULE_NAMES,
        default=None,
        help="the game to ship it for, if not the one it trained on (agent.json records both)",
    )
    x.add_argument(
        "--specialist",
        action="append",
        default=[],
        metavar="RED=PATH",
        help="make a switch defender (jaxcage/switch.py): --run plays the first steps and any "
        "other red agent, PATH (run or agent directory) plays RED (b_line, meander, sleep) once "
        "identified; repeatable",
    )
    distill_cli.add_parser(sub)
    workflows_cli.add_parser(sub)
    return p


def _add_distributed_arguments(t: argparse.ArgumentParser) -> None:
    """``jax.distributed`` flags (config fields of the same names; jaxcage/sharding.py). Inside a
    SLURM or Open MPI job none is needed: JAX reads the cluster from the environment."""
    t.add_argument("--coordinator", default=None, metavar="HOST:PORT", help="process 0's address")
    t.add_argument("--num-processes", type=int, default=None, metavar="N")
    t.add_argument("--process-id", type=int, default=None, metavar="I")


def _placement_overrides(args: argparse.Namespace, overrides: dict) -> dict:
    """Placement fields from this command (flags, then --set), never from the checkpoint: a run
    resumes on whatever devices and processes the resuming command has."""
    placement = {f: overrides.get(f) for f in PLACEMENT_FIELDS}
    for f in ("coordinator", "num_processes", "process_id"):
        if getattr(args, f) is not None:
            placement[f] = getattr(args, f)
    return placement


def _cmd_export(args: argparse.Namespace) -> int:
    if args.specialist:
        if args.seed_index is not None or args.rules is not None:
            raise ValueError("--seed-index and --rules do not combine with --specialist")
        specialists: dict[str, str] = {}
        for item in args.specialist:
            red, sep, path = item.partition("=")
            if not sep or not red or not path:
                raise ValueError(f"--specialist expects RED=PATH, got {item!r}")
            if red in specialists:
                raise ValueError(f"--specialist {red} given twice")
            specialists[red] = path
        out = compose_switch(args.run, specialists, args.out)
    else:
        out = export_run(args.run, args.out, seed_index=args.seed_index, rules=args.rules)
    agent = load_agent(out)
    print(f"exported {args.run} ({agent.rules} rules) to {out}; score it with (README.md there):")
    print(f"    jaxcage eval --run {out} --engine cyborg --episodes 1000")
    return 0


def _train_config(args: argparse.Namespace) -> tuple[PPOConfig, Path]:
    overrides = dict(parse_override(o) for o in args.overrides)
    placement = _placement_overrides(args, overrides)
    if args.resume:
        overrides.update(placement)
        if args.out is None:
            raise ValueError("--resume needs --out <run directory>")
        out = Path(args.out)
        path = out / ckpt.CHECKPOINT_NAME
        saved = ckpt.load_config(path)
        if args.config is None:
            cfg = saved.replace(**overrides)
        else:
            cfg = load_config(args.config, **overrides)
        try:
            ckpt.check_compatible(path, saved, cfg)
        except ValueError:
            raise ValueError(
                "--resume with a config that differs from the run's: "
                + "; ".join(config_diff(without_host_fields(saved), without_host_fields(cfg)))
            ) from None
        return cfg, out
    overrides.update({k: v for k, v in placement.items() if v is not None})
    name = args.config or "default"
    cfg = load_config(name, **overrides)
    out = (
        Path(args.out)
        if args.out
        else Path("runs") / f"{Path(name).stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    )
    if (out / ckpt.CHECKPOINT_NAME).exists():
        raise ValueError(f"{out} already holds a run; use --resume or another --out")
    return cfg, out


def _cmd_train(args: argparse.Namespace) -> int:
    if args.eval_episodes < 0:
        raise ValueError(f"--eval-episodes must be >= 0, got {args.eval_episodes}")
    if args.out is None and (args.coordinator is not None or cluster_detected()):
        raise ValueError("a multi-process run needs --out (the same run directory everywhere)")
    cfg, out = _train_config(args)
    initialize_distributed(cfg.coordinator, cfg.num_processes, cfg.process_id)
    if not is_writer():
        train(cfg, out_dir=out, resume=args.resume)
        return 0  # process 0 reports and evaluates
    print(f"run directory: {out}", flush=True)
    result = train(
        cfg, out_dir=out, resume=args.resume, verbose=not args.quiet, profile=args.profile
    )
    sps = result.env_steps / max(result.wall_time, 1e-9)
    final = result.metrics["return_mean"][:, -max(1, cfg.num_updates // 10) :]
    print(
        f"done: {result.env_steps:,} env steps in {result.wall_time:.1f}s "
        f"({sps:,.0f} steps/s overall, compile {result.compile_time:.1f}s); "
        f"final training return {_nanmean(final):.1f}",
        flush=True,
    )
    if args.eval_episodes:
        table = evaluate(result, engine="jax", episodes=args.eval_episodes, deterministic=True)
        print(table)
        path = out / _table_name(table)
        table.save_json(path)
        print(f"saved {path}")
    print(f"evaluate again (e.g. inside CybORG) with: jaxcage eval --run {out} --engine cyborg")
    return 0


def _nanmean(x: object) -> float:
    a = np.asarray(x, dtype=float)
    return float(np.nanmean(a)) if np.isfinite(a).any() else float("nan")


def _table_name(table: EvalTable) -> str:
    """``eval_<engine>[_<rules>]_<deterministic|stochastic>.json``: tables of the default rule
    set keep their old name; others say their rules."""
    mode = "deterministic" if table.deterministic else "stochastic"
    rules = "" if table.rules == "current" else f"_{table.rules}"
    return f"eval_{table.engine}{rules}_{mode}.json"


def _load_defender(run: str) -> object:
    """An exported agent directory's defender, else a run directory's training result."""
    if (Path(run) / AGENT_FILE).is_file():
        return load_agent(run)
    return load_run(run)


def _cmd_losses(args: argparse.Namespace) -> int:
    from jaxcage.losses import loss_breakdown

    if args.json is not None and Path(args.json).is_dir():
        raise ValueError(f"--json {args.json} is a directory; name a file")
    subject = _load_defender(args.run)
    found = loss_breakdown(
        subject, args.red, args.steps, args.episodes, args.seed, rules=args.rules
    )
    print(found)
    if args.json is not None:
        Path(args.json).write_text(json.dumps(found.to_dict(), indent=2) + "\n")
        print(f"saved {args.json}")
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    subject = _load_defender(args.run)
    table = evaluate(
        subject,
        engine=args.engine,
        episodes=args.episodes,
        deterministic=not args.stochastic,
        seed=args.seed,
        seed_index=args.seed_index,
        progress=args.engine == "cyborg",
        rules=args.rules,
    )
    print(table)
    path = Path(args.run) / _table_name(table)
    table.save_json(path)
    print(f"saved {path}")
    return 0


def _enable_compile_cache() -> None:
    """Keep compiled XLA programs on disk, so a second ``jaxcage train``/``eval`` of the same
    config skips most of the compilation. ``$JAXCAGE_CACHE_DIR`` moves it (``off`` disables it).
    Only the CLI does this: the library leaves JAX's global configuration alone."""
    where = os.environ.get("JAXCAGE_CACHE_DIR", str(Path.home() / ".cache" / "jaxcage" / "xla"))
    if where.lower() in ("", "0", "off", "none"):
        return
    try:
        jax.config.update("jax_compilation_cache_dir", where)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
    except Exception as e:  # noqa: BLE001 - a cache is an optimisation, never a failure
        print(f"jaxcage: compilation cache disabled ({e})", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``jaxcage`` console script; returns the exit status."""
    _enable_compile_cache()
    parser = _build_parser()
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list:
        args_list = ["train"]
    args = parser.parse_args(args_list)
    try:
        if args.command == "train":
            return _cmd_train(args)
        if args.command == "eval":
            return _cmd_eval(args)
        if args.command == "export":
            return _cmd_export(args)
        if args.command == "losses":
            return _cmd_losses(args)
        if args.command == "distill":
            return distill_cli.run(args)
        if args.command == "workflows":
            return workflows_cli.run(args)
    except (ValueError, FileNotFoundError, ReferenceNotInstalled) as e:
        print(f"jaxcage {args.command}: error: {e}", file=sys.stderr)
        return 2
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
