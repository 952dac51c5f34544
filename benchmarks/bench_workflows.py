"""Workflow search: wall time and env steps/s of the whole experiment, against the spec's figures.

Runs, in one process and in this order (each its own compiled program):

1. ``search``: the workflow search of ``--config`` (default ``configs/workflows.yaml``: 100,000
   training episodes = 10M env steps vs B_line, compliance, PPO, a 1,000-episode evaluation per
   workflow, GP-UCB between workflows). Wall time includes compilation.
2. ``baselines`` under the same evaluation and budget: random, greedy (exact and host-level) on
   the best order the search found, the 6 canonical fixed orders, and PPO without the workflow
   input trained on the same number of episodes (``--no-baselines`` skips it).
3. optionally (``--sweep-episodes N``) the sweep of all 120 workflows at N episodes each.

Rates are env steps (training + evaluation) per second of wall time, compile included, set against
the workflow project's measured rates (spec ``../shared/workflows/SPEC.md`` §7): its best V2
configuration (100 CPU workers, no true-state queries) 74.3 episodes/s = 7,430 steps/s; its
typical 0.5-30 episodes/s; 22 minutes per 100k-episode search at best and ~2 days as V0 ran.
Those are quoted numbers from the repo's docs, not measured here (no CybORG run in this script).

Usage::

    python benchmarks/bench_workflows.py --out benchmarks/results/bench_workflows_bline.json
    python benchmarks/bench_workflows.py --set red_agent=meander --out results/wf_meander.json
    python benchmarks/bench_workflows.py --set total_episodes=20000 --no-baselines
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from jaxcage.workflows import baselines, load_config, search, sweep  # noqa: E402
from jaxcage.workflows.config import parse_override  # noqa: E402

REPO_BEST_EPS = 74.3  # V2 ProcessPool, 100 workers, no true-state queries
REPO_TYPICAL_EPS = (0.5, 30.0)
REPO_BEST_SEARCH_S = 22 * 60  # 100k episodes at 74 eps/s
REPO_V0_SEARCH_S = 2 * 24 * 3600  # "about 2 days as it actually ran"


def _strip(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in summary.items() if k != "workflows"}


def main() -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    p.add_argument("--config", default="workflows")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--run-dir", default="runs/bench_workflows", help="where the runs write")
    p.add_argument("--no-baselines", action="store_true")
    p.add_argument("--sweep-episodes", type=int, default=0, help="also sweep all 120 at N each")
    p.add_argument("--out", default=None, help="JSON result path")
    args = p.parse_args()

    overrides = dict(parse_override(o) for o in args.overrides)
    cfg = load_config(args.config, **overrides)
    run_dir = Path(args.run_dir) / time.strftime("%Y%m%d-%H%M%S")
    result: dict[str, Any] = {
        "benchmark": "workflows",
        "config": cfg.to_dict(),
        "load_average_start": list(os.getloadavg()),
        "cpu_count": os.cpu_count(),
    }

    res = search(cfg, out_dir=run_dir / "search", verbose=True)
    s = res.summary
    steps = s["env_steps"] + s["eval_env_steps"]
    eps_per_s = steps / cfg.max_steps / s["wall_time_s"]  # training + evaluation episodes
    result["search"] = _strip(s)
    result["search_rate"] = {
        "env_steps_per_s": steps / s["wall_time_s"],
        "episodes_per_s": eps_per_s,
        "vs_repo_best_74_eps": eps_per_s / REPO_BEST_EPS,
        "vs_repo_typical": [eps_per_s / x for x in REPO_TYPICAL_EPS],
        "vs_repo_best_search_22min": REPO_BEST_SEARCH_S / s["wall_time_s"],
        "vs_repo_v0_2days": REPO_V0_SEARCH_S / s["wall_time_s"],
    }
    print(json.dumps(result["search_rate"], indent=2), flush=True)

    if not args.no_baselines and s.get("best_order"):
        bcfg = cfg.replace(baseline_order=s["best_order"])
        b = baselines(bcfg, out_dir=run_dir / "baselines", verbose=True)
        result["baselines"] = b.summary
        rows = [
            (
                "search best (" + s["best_order_letters"] + ")",
                s["best_env_return"],
                s["best_compliance"],
            ),
            *[(r["baseline"], r["eval_env_return"], r["eval_compliance"]) for r in b.workflows],
        ]
        print(f"{'policy':>28} | env return | compliance")
        for name, ret, comp in rows:
            print(f"{name:>28} | {ret:10.2f} | {comp:10.3f}")

    if args.sweep_episodes:
        scfg = cfg.replace(sweep_episodes_per_workflow=args.sweep_episodes)
        sw = sweep(scfg, out_dir=run_dir / "sweep", verbose=True)
        ss = sw.summary
        result["sweep"] = _strip(ss)
        rank = sorted(sw.workflows, key=lambda r: -r["eval_env_return"])
        compliant = [r for r in rank if r["eval_compliance"] >= cfg.threshold]
        result["sweep_top_compliant"] = [
            {k: r[k] for k in ("letters", "eval_env_return", "eval_compliance", "updates")}
            for r in compliant[:10]
        ]
        letters = [r["letters"] for r in compliant]
        best = s.get("best_order_letters")
        result["search_best_rank_in_sweep"] = letters.index(best) + 1 if best in letters else None
    result["load_average_end"] = list(os.getloadavg())
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2, default=float) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
