"""``jaxcage workflows search|sweep|baselines``: the workflow experiment from the command line.

::

    jaxcage workflows search    [--config NAME] [--set key=value ...] --out DIR [--quiet]
    jaxcage workflows sweep     [--config NAME] [--set key=value ...] --out DIR [--quiet]
    jaxcage workflows baselines [--config NAME] [--set key=value ...] --out DIR [--quiet]

``--config`` names a file in ``configs/`` (``workflows``, the default; ``seed_v2`` and ``seed_v0``
find ``configs/workflows_seed_v2.yaml`` / ``_seed_v0.yaml``) or a YAML path. The run directory gets
``training_log.csv``, ``gp_sampling_log.csv``, ``experiment_config.json``, ``summary.json``,
``checkpoints/`` and ``search.png`` (see ``jaxcage.workflows.logs``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from jaxcage.workflows.config import load_config, parse_override

COMMANDS = ("search", "sweep", "baselines")


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``workflows`` on the top-level ``jaxcage`` parser."""
    w = sub.add_parser("workflows", help="workflow-conditioned PPO and the GP-UCB workflow search")
    w.add_argument("action", choices=COMMANDS, help="search | sweep | baselines")
    w.add_argument("--config", default="workflows", help="config name in configs/ or a YAML path")
    w.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field (YAML value), repeatable: --set red_agent=meander",
    )
    w.add_argument("--out", required=True, help="run directory")
    w.add_argument("--quiet", action="store_true", help="no progress lines")


def run(args: argparse.Namespace) -> int:
    """Execute ``jaxcage workflows ...``; returns the exit status."""
    from jaxcage.workflows.search import baselines, search, sweep

    fn = {"search": search, "sweep": sweep, "baselines": baselines}[args.action]
    overrides = dict(parse_override(o) for o in args.overrides)
    cfg = load_config(args.config, **overrides)  # bad input fails here, before compiling
    out = Path(args.out)
    if (out / "summary.json").exists():
        raise ValueError(f"{out} already holds a finished run; choose another --out")
    print(f"run directory: {out}", flush=True)
    result = fn(cfg, out_dir=out, verbose=not args.quiet)
    print(f"saved {out / 'summary.json'}", flush=True)
    del result
    return 0
