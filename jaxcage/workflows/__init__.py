"""Workflow-conditioned defence: priority orders over host types, compliance, search.

Mirrors the workflow-search project ``Guangyu-Jiang/cage2-workflow-search-rl`` (see
``../shared/workflows/SPEC.md``); ``orders`` holds the workflows as data.

Public API::

    from jaxcage.workflows import load_config, search, sweep, baselines
    result = search(load_config("workflows", total_episodes=20_000), out_dir="runs/wf")
    result.summary["best_order"], result.summary["best_env_return"]

(``search`` here is the function; the module is ``jaxcage.workflows.search``. The from-import
below rebinds the package attribute after the submodule is loaded.)
"""

from __future__ import annotations

from jaxcage.workflows.config import load_config
from jaxcage.workflows.search import baselines, search, sweep

__all__ = ["baselines", "load_config", "search", "sweep"]
