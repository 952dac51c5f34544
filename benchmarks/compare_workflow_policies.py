"""The universal workflow policy against the independent ones, workflow by workflow.

Reads two finished runs' ``summary.json``: a ``jaxcage workflows search --set mode=universal``
run (one policy, evaluated on each of the 120 workflows) and a ``jaxcage workflows sweep`` run
(one policy per workflow), joins their per-workflow evaluations on the workflow, and prints and
writes the comparison: per-workflow env return and compliance of each, how many workflows each
makes compliant (evaluation compliance >= the runs' threshold), the mean and median return, the
correlation of the two returns across workflows, and the best compliant workflow under each.
A third run (another sweep, e.g. from scratch vs fine-tuned) can be added with ``--other``.

Usage::

    python benchmarks/compare_workflow_policies.py --universal runs/universal_bline \\
        --sweep runs/sweep_from_universal --out benchmarks/results/workflows_universal_vs_sweep
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np


def _rows(run: Path) -> tuple[dict[str, Any], dict[int, dict[str, Any]]]:
    summary = json.loads((run / "summary.json").read_text())
    rows = {int(r["order"]): r for r in summary["workflows"]}
    if sorted(rows) != list(range(120)):
        raise ValueError(f"{run}: expected an evaluation of all 120 workflows, got {len(rows)}")
    return summary, rows


def _threshold(run: Path) -> float:
    return float(json.loads((run / "experiment_config.json").read_text())["threshold"])


def describe(name: str, rows: dict[int, dict[str, Any]], threshold: float) -> dict[str, Any]:
    ret = np.array([rows[o]["eval_env_return"] for o in range(120)])
    comp = np.array([rows[o]["eval_compliance"] for o in range(120)])
    ok = comp >= threshold
    best = int(np.argmax(np.where(ok, ret, -np.inf))) if ok.any() else None
    return {
        "policy": name,
        "compliant_workflows": int(ok.sum()),
        "mean_env_return": float(ret.mean()),
        "median_env_return": float(np.median(ret)),
        "mean_compliance": float(comp.mean()),
        "min_compliance": float(comp.min()),
        "best_compliant": None if best is None else rows[best]["letters"],
        "best_compliant_env_return": None if best is None else float(ret[best]),
        "best_compliant_compliance": None if best is None else float(comp[best]),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    p.add_argument("--universal", type=Path, required=True, help="universal search run dir")
    p.add_argument("--sweep", type=Path, required=True, help="sweep run dir (independent)")
    p.add_argument("--other", type=Path, default=None, help="optional second sweep run dir")
    p.add_argument("--out", type=Path, default=None, help="output prefix (.json and .csv)")
    args = p.parse_args(argv)

    threshold = _threshold(args.universal)
    runs = {"universal": args.universal, "independent": args.sweep}
    if args.other is not None:
        runs["independent_other"] = args.other
    loaded = {name: _rows(run) for name, run in runs.items()}
    table = [describe(name, rows, threshold) for name, (_, rows) in loaded.items()]
    u, s = loaded["universal"][1], loaded["independent"][1]
    ur = np.array([u[o]["eval_env_return"] for o in range(120)])
    sr = np.array([s[o]["eval_env_return"] for o in range(120)])
    uc = np.array([u[o]["eval_compliance"] for o in range(120)])
    sc = np.array([s[o]["eval_compliance"] for o in range(120)])
    head_to_head = {
        "threshold": threshold,
        "return_correlation": float(np.corrcoef(ur, sr)[0, 1]),
        "compliance_correlation": float(np.corrcoef(uc, sc)[0, 1]),
        "universal_higher_return": int((ur > sr).sum()),
        "universal_higher_compliance": int((uc > sc).sum()),
        "mean_return_difference": float((ur - sr).mean()),
        "training_episodes": {
            name: int(summary["episodes_used"]) for name, (summary, _) in loaded.items()
        },
    }
    cols = ["policy", "compliant_workflows", "mean_env_return", "median_env_return"]
    cols += ["mean_compliance", "best_compliant", "best_compliant_env_return"]
    print(" | ".join(cols))
    for r in table:
        print(" | ".join(f"{r[c]:.3f}" if isinstance(r[c], float) else str(r[c]) for c in cols))
    print(json.dumps(head_to_head, indent=2))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        doc = {"runs": {k: str(v) for k, v in runs.items()}, "table": table, **head_to_head}
        args.out.with_suffix(".json").write_text(json.dumps(doc, indent=2) + "\n")
        with open(args.out.with_suffix(".csv"), "w", newline="") as f:
            w = csv.writer(f)
            header = ["order", "letters"]
            for name in loaded:
                header += [f"{name}_env_return", f"{name}_compliance"]
            w.writerow(header)
            for o in range(120):
                line: list[Any] = [o, u[o]["letters"]]
                for _, rows in loaded.values():
                    line += [round(rows[o]["eval_env_return"], 3)]
                    line += [round(rows[o]["eval_compliance"], 4)]
                w.writerow(line)
        print(f"wrote {args.out.with_suffix('.json')} and .csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
