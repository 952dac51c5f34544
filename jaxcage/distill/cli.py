"""``jaxcage distill``: teach a defender a teacher's play by DAgger, from the command line.

::

    jaxcage distill --run AGENT_OR_RUN --out AGENT_DIR [--teacher haraka_restore]
                    [--rules leaderboard] [--set key=value ...] [--quiet]

The output is an exported agent (``jaxcage.export``; ``agent.json`` records the distillation
under ``meta.distilled``) plus ``distill.json`` with one report per DAgger iteration. Score it
like any agent: ``jaxcage eval --run AGENT_DIR [--engine cyborg]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from jaxcage.distill.dagger import DistillConfig, IterationReport, distill
from jaxcage.distill.teachers import TEACHERS
from jaxcage.export import ExportedAgent, check_agent_dir, load_agent, save_agent
from jaxcage.ppo.config import parse_override
from jaxcage.rules import RULE_NAMES

REPORT_FILE = "distill.json"


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``distill`` on the top-level ``jaxcage`` parser."""
    d = sub.add_parser("distill", help="teach a defender a privileged teacher's play (DAgger)")
    d.add_argument("--run", required=True, help="exported agent or run directory to start from")
    d.add_argument("--out", required=True, help="agent directory to write (agents/<name>)")
    d.add_argument("--teacher", choices=sorted(TEACHERS), default=DistillConfig.teacher)
    d.add_argument(
        "--rules",
        choices=RULE_NAMES,
        default=DistillConfig.rules,
        help="the game to teach and ship it for (the teacher must apply to it)",
    )
    d.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a DistillConfig field (YAML value), repeatable: --set episodes=4096",
    )
    d.add_argument("--quiet", action="store_true", help="no per-iteration lines")


def config_from_args(args: argparse.Namespace) -> DistillConfig:
    """The validated ``DistillConfig`` of a ``distill`` command line."""
    fields = {f.name for f in dataclasses.fields(DistillConfig)}
    values: dict[str, object] = {"teacher": args.teacher, "rules": args.rules}
    for text in args.overrides:
        key, value = parse_override(text)
        if key not in fields or key in ("teacher", "rules"):
            allowed = sorted(fields - {"teacher", "rules"})
            raise ValueError(
                f"unknown distill setting {key!r} (--teacher and --rules are flags; "
                f"--set takes {allowed})"
            )
        values[key] = value
    cfg = DistillConfig(**values)  # type: ignore[arg-type]
    cfg.validate()
    return cfg


def _check_out(run: Path, out: Path) -> None:
    if out.resolve() == run.resolve():
        raise ValueError(f"--out {out} is the defender being distilled; write somewhere else")
    check_agent_dir(out)


def run(args: argparse.Namespace) -> int:
    """Run ``jaxcage distill``; every argument is checked before anything is compiled."""
    cfg = config_from_args(args)
    src, out = Path(args.run), Path(args.out)
    _check_out(src, out)
    defender = load_agent(src)
    if not isinstance(defender, ExportedAgent):
        raise ValueError(f"{src} is a switch defender; distill one of its members instead")

    def log(r: IterationReport) -> None:
        if not args.quiet:
            on_rule = "-" if r.rule_agreement is None else f"{r.rule_agreement:.3f}"
            print(
                f"iteration {r.iteration}: beta {r.beta:.3f} | return {r.mean_return:7.2f} | "
                f"agreement {r.agreement:.3f}, on rule states {on_rule} "
                f"({r.rule_states}) | data {r.dataset_size:,} | loss {r.fit_loss:.4f} | "
                f"{r.wall_s:.1f} s",
                flush=True,
            )

    agent, reports = distill(defender, cfg, log=log)
    meta = {**agent.meta, "distilled": {"source": str(src), **agent.meta["distilled"]}}
    save_agent(dataclasses.replace(agent, meta=meta), out)
    report = {
        "source": str(src),
        "config": cfg.to_dict(),
        "iterations": [r.to_dict() for r in reports],
    }
    (out / REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n")
    print(f"distilled {src} with teacher {cfg.teacher} ({cfg.rules} rules) into {out}; score it:")
    print(f"    jaxcage eval --run {out} --engine cyborg --episodes 1000")
    return 0
