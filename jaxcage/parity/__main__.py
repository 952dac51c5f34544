"""``python -m jaxcage.parity``: the CybORG equivalence checks from the command line.

Subcommands::

    python -m jaxcage.parity                 # = report: lockstep + statistical table, printed
    python -m jaxcage.parity lockstep --episodes 1000 [--red b_line meander] [--green sleep random]
    python -m jaxcage.parity stats [--data tests/data/cyborg_returns.npz] [--plot curves.png]
    python -m jaxcage.parity generate [--out tests/data/cyborg_returns.npz]   # CybORG, hours
    python -m jaxcage.parity generate --rules debugged --backend debugged   # CybORG++
    python -m jaxcage.parity report --write PARITY_REPORT.md

``lockstep`` and ``generate`` need the CybORG reference; ``stats`` only needs the committed data.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
import time
from collections.abc import Sequence
from typing import Any

import jax

from jaxcage.constants import GREEN_AGENT_NAMES, RED_AGENT_NAMES
from jaxcage.parity import generate as gen
from jaxcage.parity import stats
from jaxcage.parity.lockstep import DEFAULT_SEED, LockstepConfig, LockstepResult, run_lockstep
from jaxcage.parity.policies import LOCKSTEP_POLICIES, POLICIES
from jaxcage.reference.cyborg_env import BACKENDS, ReferenceNotInstalled
from jaxcage.rules import DEFAULT_RULES, RULE_NAMES

DEFAULT_DATA = "tests/data/cyborg_returns.npz"
LOCKSTEP_REDS = ("b_line", "meander")


def _add_lockstep_args(p: argparse.ArgumentParser, episodes: int) -> None:
    p.add_argument("--episodes", type=int, default=episodes, help="episodes per (red, green) pair")
    p.add_argument("--red", nargs="+", default=list(LOCKSTEP_REDS), choices=RED_AGENT_NAMES)
    p.add_argument("--green", nargs="+", default=list(GREEN_AGENT_NAMES), choices=GREEN_AGENT_NAMES)
    p.add_argument(
        "--policy",
        nargs="+",
        default=list(LOCKSTEP_POLICIES),
        choices=list(POLICIES),
        help="blue policies, rotated over episodes",
    )
    p.add_argument("--max-steps", type=int, default=100)
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="episode i uses seed+i")
    p.add_argument("--backend", default="auto", choices=BACKENDS)
    p.add_argument(
        "--rules",
        default=DEFAULT_RULES,
        choices=RULE_NAMES,
        help="jaxcage rule set; must match the CybORG code imported (leaderboard: 606813b; "
        "debugged: CybORG++ Debugged_CybORG, --backend debugged)",
    )
    p.add_argument("--stop-after", type=int, default=None, help="stop after N mismatches")
    p.add_argument("--verbose", action="store_true", help="log every step")


def _add_stats_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default=DEFAULT_DATA, help="CybORG samples (generate's output)")
    p.add_argument(
        "--jax-episodes",
        type=int,
        default=stats.DEFAULT_JAX_EPISODES,
        help="jaxcage episodes per cell (at least; 10x CybORG's n where that is more)",
    )
    p.add_argument("--jax-seed", type=int, default=stats.DEFAULT_JAX_SEED)
    p.add_argument("--cells", nargs="*", default=None, help="cell keys, e.g. random/b_line/100")
    p.add_argument("--plot", default=None, help="write a PNG grid of per-step reward curves")
    p.add_argument(
        "--jax-rules",
        dest="stats_rules",
        default=None,
        choices=RULE_NAMES,
        help="jaxcage rule set (default: the samples' rules, meta/rules of --data)",
    )


def _lockstep(args: argparse.Namespace) -> LockstepResult:
    configs = [
        LockstepConfig(
            red=red,
            green=green,
            policies=tuple(args.policy),
            episodes=args.episodes,
            max_steps=args.max_steps,
            seed=args.seed,
        )
        for red in args.red
        for green in args.green
    ]
    return run_lockstep(
        configs,
        backend=args.backend,
        stop_after=args.stop_after,
        log=print,
        verbose=args.verbose,
        rules=args.rules,
    )


def _lockstep_summary(args: argparse.Namespace, res: LockstepResult) -> dict[str, Any]:
    """What the report needs from a lockstep run (JSON-serialisable, see ``--save``)."""
    return {
        "red": list(args.red),
        "green": list(args.green),
        "policies": list(args.policy),
        "max_steps": args.max_steps,
        "seed": args.seed,
        "backend": args.backend,
        "rules": args.rules,
        "episodes": res.episodes,
        "steps": res.steps,
        "seconds": round(res.seconds, 1),
        "mismatching_episodes": len(res.mismatches),
        "mismatch_reports": [m.format() for m in res.mismatches[:5]],
        "coverage": res.coverage_lines(),
        "date": datetime.date.today().isoformat(),
    }


def _print_lockstep(summary: dict[str, Any]) -> None:
    print(
        f"lockstep: {summary['episodes']} episodes, {summary['steps']} steps compared, "
        f"{summary['mismatching_episodes']} mismatching episodes ({summary['seconds']:.0f}s)"
    )
    for line in summary["coverage"]:
        print(f"  {line}")


def _stats(args: argparse.Namespace) -> list[stats.CellResult]:
    data = gen.load_dataset(args.data)
    cells = [gen.Cell.parse(k) for k in args.cells] if args.cells else None
    # jaxcage runs the rule set of the CybORG that made the samples unless told otherwise.
    rules = getattr(args, "stats_rules", None) or data.rules
    print(f"CybORG samples: rules={data.rules}; jaxcage: rules={rules}")
    print(stats.TABLE_HEADER)
    results = stats.run_stats(
        data.rewards,
        cells=cells,
        episodes=args.jax_episodes,
        seed=args.jax_seed,
        log=print,
        rules=rules,
    )
    print(stats.summary(results))
    if args.plot:
        stats.plot_curves(results, args.plot)
        print(f"per-step reward curves written to {args.plot}")
    return results


def _report_markdown(
    args: argparse.Namespace, lock: dict[str, Any] | None, results: list[stats.CellResult]
) -> str:
    data = gen.load_dataset(args.data)
    lines = [
        "# jaxcage vs CybORG: parity report",
        "",
        "Generated by `python -m jaxcage.parity report --write PARITY_REPORT.md` on "
        f"{datetime.date.today().isoformat()} (jax {jax.__version__}, "
        f"Python {platform.python_version()}, {platform.machine()}). Method: `jaxcage/parity/`;",
        "quirks and known differences: `PARITY.md`.",
        "",
        "## Level 1: lockstep",
        "",
    ]
    if lock is None:
        lines.append("Not run: the CybORG reference is not installed.")
    else:
        lines += [
            f"Run on {lock['date']} (`python -m jaxcage.parity lockstep --episodes "
            f"{lock['episodes'] // max(1, len(lock['red']) * len(lock['green']))} --seed "
            f"{lock['seed']}`): red agents {', '.join(lock['red'])} x green "
            f"{', '.join(lock['green'])}; blue policies {', '.join(lock['policies'])} "
            f"(rotated over episodes); {lock['max_steps']} steps per episode; CybORG backend "
            f"{lock['backend']}.",
            "",
            f"**{lock['episodes']} episodes, {lock['steps']} steps compared, "
            f"{lock['mismatching_episodes']} mismatching episodes.**",
            "",
            "Compared exactly after every step: the 52-dim observation, the reward (in tenths), "
            "Red's action type / target / success / exploit, Green's scan target, and every "
            "`EnvState` field read back from CybORG's objects (sessions by privilege and "
            "removability, files, decoys, OTService, Blue's table, Red's port memory and known "
            "IPs / hosts / subnets, B_line's and Meander's memories). What the compared steps "
            "exercised (counts):",
            "",
            *(f"- {line}" for line in lock["coverage"]),
        ]
        for text in lock["mismatch_reports"]:
            lines += ["", "```", text, "```"]
    lines += [
        "",
        "## Level 2: statistical equivalence of episode returns",
        "",
        f"CybORG samples: `{args.data}` (base seed {data.base_seed}; {', '.join(data.versions)}). "
        f"jaxcage: max({args.jax_episodes}, {stats.JAX_PER_CYBORG} x CybORG's n) independent "
        f"episodes per cell (seed {args.jax_seed}). "
        f"TOST: two one-sided Welch t-tests, alpha {stats.ALPHA}, margin = max(2% of |CybORG "
        f"mean|, 0.5); 'power' = TOST's chance of showing equivalence were the means equal "
        f"(below {stats.UNDERPOWERED:.0%}: underpowered). 'curve p': Bonferroni-corrected min "
        f"over steps of a two-sided two-sample t-test of the per-step reward (flagged below "
        f"{stats.CURVE_ALPHA}).",
        "",
        "```",
        stats.TABLE_HEADER,
        *(stats.format_row(r) for r in results),
        "```",
        "",
        stats.summary(results),
        "",
        f"Acceptance rule (CI): no cell DIFFERENT, no per-step curve differing, and every cell "
        f"whose TOST power is at least {stats.REQUIRED_POWER:.0%} shown EQUIVALENT.",
        "",
        "Verdicts: EQUIVALENT = TOST rejects non-equivalence; INCONCLUSIVE = neither "
        "equivalence nor a difference is shown (the sample cannot resolve the margin: see the "
        "power column); DIFFERENT = a two-sided Welch test rejects equal means at "
        f"{stats.DIFFERENCE_ALPHA:.2g} (0.05 Bonferroni-corrected over the 27 cells).",
    ]
    if args.plot:
        lines += ["", f"Per-step mean reward curves: `{args.plot}`."]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m jaxcage.parity",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command")
    p_lock = sub.add_parser("lockstep", help="per-step lockstep comparison with CybORG")
    _add_lockstep_args(p_lock, episodes=100)
    p_lock.add_argument("--save", default=None, help="write a JSON summary (for report)")
    p_stats = sub.add_parser("stats", help="TOST of returns against the committed CybORG data")
    _add_stats_args(p_stats)
    p_gen = sub.add_parser("generate", help="regenerate the CybORG samples (bit for bit)")
    p_gen.add_argument("--out", default=None, help="default: gen.DATA_PATHS[--rules]")
    p_gen.add_argument("--episodes", type=int, default=None, help="override episodes per cell")
    p_gen.add_argument("--base-seed", type=int, default=gen.DEFAULT_BASE_SEED)
    p_gen.add_argument("--cells", nargs="*", default=None)
    p_gen.add_argument("--backend", default="auto", choices=BACKENDS)
    p_gen.add_argument("--parts-dir", default=None, help="chunk cache (default runs/...)")
    p_gen.add_argument(
        "--rules",
        default=DEFAULT_RULES,
        choices=RULE_NAMES,
        help="rule set the imported CybORG implements (checked); leaderboard: 606813b, "
        "debugged: CybORG++ (--backend debugged)",
    )
    p_rep = sub.add_parser("report", help="lockstep + stats; optionally write a Markdown report")
    _add_lockstep_args(p_rep, episodes=50)
    _add_stats_args(p_rep)
    p_rep.add_argument("--write", default=None, help="write the Markdown report here")
    p_rep.add_argument(
        "--lockstep-results",
        default=None,
        help="use a saved `lockstep --save` summary instead of running the lockstep",
    )
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in sub.choices and argv[0] not in ("-h", "--help"):
        argv = ["report", *argv]  # no subcommand: the report (its options may follow)
    args = parser.parse_args(argv)

    if args.command == "generate":
        default_cells = gen.RULES_CELLS[args.rules]
        cells = [gen.Cell.parse(k) for k in args.cells] if args.cells else default_cells
        out = args.out or gen.DATA_PATHS[args.rules]
        gen.generate(
            out,
            cells=cells,
            episodes=args.episodes,
            base_seed=args.base_seed,
            backend=args.backend,
            parts_dir=args.parts_dir,
            rules=args.rules,
            chunk=gen.CHUNK if args.rules == DEFAULT_RULES else gen.LEADERBOARD_CHUNK,
        )
        print(f"wrote {out}")
        return 0
    if args.command == "stats":
        results = _stats(args)
        return 0 if stats.all_consistent(results) else 1
    if args.command == "lockstep":
        start = time.perf_counter()
        try:
            res = _lockstep(args)
        except ReferenceNotInstalled as err:
            print(err, file=sys.stderr)
            return 2
        res.seconds = time.perf_counter() - start
        summary = _lockstep_summary(args, res)
        _print_lockstep(summary)
        if args.save:
            with open(args.save, "w") as f:
                json.dump(summary, f, indent=1)
        return 0 if not res.mismatches else 1

    # report
    lock: dict[str, Any] | None = None
    if args.lockstep_results:
        with open(args.lockstep_results) as f:
            lock = json.load(f)
    else:
        try:
            start = time.perf_counter()
            res = _lockstep(args)
            res.seconds = time.perf_counter() - start
            lock = _lockstep_summary(args, res)
        except ReferenceNotInstalled as err:
            print(f"lockstep not run: {err}", file=sys.stderr)
    if lock is not None:
        _print_lockstep(lock)
    results = _stats(args)
    if args.write:
        with open(args.write, "w") as f:
            f.write(_report_markdown(args, lock, results))
        print(f"report written to {args.write}")
    ok = (lock is None or not lock["mismatching_episodes"]) and stats.all_consistent(results)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
