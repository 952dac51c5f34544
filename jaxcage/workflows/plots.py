"""The search figure: env return against compliance per evaluated workflow, and the search trace.

A compact stand-in for the workflow project's ``workflow_rl/plot_consolidated_logs.py`` panels
(compliance and reward per workflow, progress of the search). Matplotlib with the Agg backend.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np


def plot_search(
    path: Path, rows: Sequence[Mapping[str, Any]], threshold: float, title: str = ""
) -> None:
    """``rows``: one per evaluated workflow with keys ``letters``, ``eval_env_return``,
    ``eval_compliance``, ``episodes_used`` (cumulative) and ``success``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    if rows:
        ret = np.array([r["eval_env_return"] for r in rows], dtype=float)
        comp = np.array([r["eval_compliance"] for r in rows], dtype=float)
        ok = np.array([bool(r["success"]) for r in rows])
        ax1.scatter(comp[ok], ret[ok], c="tab:green", label="reached threshold", s=24)
        ax1.scatter(comp[~ok], ret[~ok], c="tab:red", marker="x", label="missed", s=24)
        for r, c, y in zip(rows, comp, ret, strict=True):
            ax1.annotate(str(r["letters"]), (c, y), fontsize=6, alpha=0.7)
        ax1.axvline(threshold, color="grey", ls="--", lw=0.8)
        ax1.legend(fontsize=8)
        eps = np.array([r["episodes_used"] for r in rows], dtype=float)
        best = np.maximum.accumulate(np.where(ok, ret, -np.inf))
        ax2.plot(eps, ret, "o", ms=3, color="tab:blue", label="evaluated workflow")
        finite = np.isfinite(best)
        ax2.step(eps[finite], best[finite], where="post", color="k", label="best compliant")
        ax2.legend(fontsize=8)
    ax1.set_xlabel("evaluation compliance")
    ax1.set_ylabel("evaluation env return (no alignment)")
    ax1.set_title("workflows: return vs compliance")
    ax2.set_xlabel("training episodes used")
    ax2.set_ylabel("evaluation env return")
    ax2.set_title("search trace")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
