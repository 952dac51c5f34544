"""Workflow-conditioned defence: priority orders over host types, compliance, search.

Mirrors the workflow-search project ``Guangyu-Jiang/cage2-workflow-search-rl`` (see
``../shared/workflows/SPEC.md``); ``orders`` holds the workflows as data.

Public API::

    from jaxcage.workflows import load_config, search, sweep, baselines
    result = search(load_config("workflows", total_episodes=20_000), out_dir="runs/wf")
    result.summary["best_order"], result.summary["best_env_return"]

``search`` and ``baselines`` here are the driver functions, which shadow the submodules of the
same names as package attributes: import those by path (``from jaxcage.workflows.baselines
import evaluate_policy``, ``importlib.import_module("jaxcage.workflows.search")``). Both
submodules are loaded before the functions are bound, so no later import rebinds the names.
"""

from __future__ import annotations

import jaxcage.workflows.baselines as _scripted_baselines  # noqa: F401 - load before shadowing
from jaxcage.workflows.config import load_config
from jaxcage.workflows.search import baselines, search, sweep

__all__ = ["baselines", "load_config", "search", "sweep"]
