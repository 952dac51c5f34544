"""The workflow search (GP-UCB over the 120 orders), the 120-workflow sweep, and the baselines.

Mirrors the outer loop of the workflow project (``workflow_rl/executor_async_train_workflow_rl.py``
``run_workflow_search``, spec §5): pick a workflow, train its policy until its batch compliance
reaches the threshold or its cap, score it, feed the score to the selector, until the episode
budget is spent. What runs where:

* compiled (one XLA program per config, compiled once): a whole iteration's inner loop,
  ``ppo.make_train_workflow``: a ``lax.while_loop`` over PPO updates with the threshold / plateau
  / budget stop in the loop condition, followed by the fixed-size stochastic evaluation. The
  remaining budget is a traced argument, so the last (capped) workflow reuses the program.
* host (NumPy, microseconds): the selector (``gp.py``), warm-start choice, budget bookkeeping and
  the log files, between iterations. A GP over 120 candidates is too small to be worth compiling.

Budget accounting is exact: every update is ``episodes_per_update`` whole episodes of
``max_steps`` steps; an iteration may use at most ``min(cap, remaining budget)`` updates; the search
stops once less than one update of budget is left (that remainder is reported as unused).
Evaluation episodes are counted separately (``eval_env_steps``), as the repo does not charge them.
``summary.json`` reports ``wall_time_s`` (compilation included) and ``cpu_time_s`` (this process's
CPU seconds over all threads: on a shared machine it says what the run would cost alone).

``sweep`` trains and evaluates every one of the 120 workflows in one run (``sweep_chunk`` of them
side by side in one vmapped program); ``baselines`` scores the non-learning policies of
``jaxcage.workflows.baselines`` and PPO without the workflow input under the same budget and
evaluation.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxcage.ppo.networks import init_each
from jaxcage.workflows import logs
from jaxcage.workflows import ppo as wppo
from jaxcage.workflows.config import WorkflowConfig, check_order
from jaxcage.workflows.gp import make_selector
from jaxcage.workflows.orders import KENDALL, NUM_ORDERS, order_letters, order_names
from jaxcage.workflows.plots import plot_search
from jaxcage.workflows.policy import load_policy


@dataclasses.dataclass
class SearchResult:
    """What ``search`` / ``sweep`` / ``baselines`` return (and write to ``out_dir``)."""

    summary: dict[str, Any]
    workflows: list[dict[str, Any]]  # one row per iteration (search) / workflow (sweep)
    params: dict[int, Any]  # order index -> its policy's final params (host arrays)
    out_dir: Path | None = None


# --------------------------------------------------------------------------------------------
# Compiled programs
# --------------------------------------------------------------------------------------------


# (WorkflowEnv-like object, env params): injectable so tests can run the driver on a tiny env.
EnvSpec = tuple[Any, Any]


@dataclasses.dataclass
class _Programs:
    init: Callable[[jax.Array], Any]
    train: Any  # compiled train_workflow (possibly vmapped)
    compile_time: float


# Fields that only steer the host loop (selection, budget, bookkeeping): the compiled inner loop
# does not depend on them, so runs differing only there share one program (tests, notebooks).
_HOST_ONLY_FIELDS = (
    "total_episodes",
    "max_episodes_per_workflow",  # enters through cap_updates
    "max_workflows",
    "selector",
    "inherit",
    "feed_failures",
    "gp_target",
    "eval_episodes",  # enters through eval_episodes
    "beta",
    "gp_lengthscale",
    "gp_signal_var",
    "gp_noise_var",
    "first_order",
    "sweep_episodes_per_workflow",
    "sweep_chunk",
    "baseline_order",
    "seed",
    "checkpoints",
)
_CACHE: dict[tuple[Any, ...], tuple[_Programs, EnvSpec | None]] = {}
_CACHE_SIZE = 8


def _programs(
    cfg: WorkflowConfig, cap_updates: int, eval_episodes: int, vmapped: int, env: EnvSpec | None
) -> _Programs:
    """The compiled inner loop (cached per process on the fields it depends on)."""
    program_cfg = tuple(
        (f.name, getattr(cfg, f.name))
        for f in dataclasses.fields(cfg)
        if f.name not in _HOST_ONLY_FIELDS
    )
    env_key = None if env is None else (id(env[0]), id(env[1]))
    key = (program_cfg, cap_updates, eval_episodes, vmapped, env_key)
    hit = _CACHE.get(key)
    # An injected env is kept alive next to its program, so its id() can't be reused.
    if hit is not None and (env is None or (hit[1] is not None and hit[1][0] is env[0])):
        return dataclasses.replace(hit[0], compile_time=0.0)
    progs = _build_programs(cfg, cap_updates, eval_episodes, vmapped, env)
    if len(_CACHE) >= _CACHE_SIZE:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[key] = (progs, env)
    return progs


def _build_programs(
    cfg: WorkflowConfig, cap_updates: int, eval_episodes: int, vmapped: int, env: EnvSpec | None
) -> _Programs:
    env, env_params = wppo.make_env(cfg) if env is None else env
    init = jax.jit(wppo.make_init_params(cfg))
    fn = wppo.make_train_workflow(cfg, env, env_params, cap_updates, eval_episodes)
    key = jax.random.key(0)
    t0 = time.perf_counter()
    params = init(key)
    if vmapped:
        fn = jax.vmap(fn, in_axes=(0, 0, 0, None))
        params = jax.tree.map(lambda x: jnp.broadcast_to(x, (vmapped, *x.shape)), params)
        args = (params, jnp.zeros(vmapped, jnp.int32), jax.random.split(key, vmapped), jnp.int32(1))
    else:
        args = (params, jnp.int32(0), key, jnp.int32(1))
    compiled = jax.jit(fn).lower(*args).compile()
    return _Programs(init=init, train=compiled, compile_time=time.perf_counter() - t0)


def _nearest_trained(order: int, trained: list[int]) -> int:
    """The Kendall-nearest trained workflow; ties go to the first trained (spec §8.19)."""
    best, best_d = trained[0], math.inf
    for t in trained:
        d = float(KENDALL[order, t])
        if d < best_d:
            best, best_d = t, d
    return best


def _hms(s: float) -> str:
    s = max(0, int(s))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _progress(
    used: int, total: int, elapsed: float, steps: int, text: str, unit: str = "episodes"
) -> str:
    frac = min(1.0, used / total)
    bar = "#" * int(20 * frac) + "-" * (20 - int(20 * frac))
    sps = steps / max(elapsed, 1e-9)
    eta = elapsed * (1 - frac) / frac if frac > 0 else float("nan")
    return (
        f"[{bar}] {used:,}/{total:,} {unit} | {steps:,} env steps | {sps:,.0f} steps/s | "
        f"{text} | {_hms(elapsed)} elapsed, ETA {_hms(eta) if math.isfinite(eta) else '?'}"
    )


def _update_rows(
    iteration: int,
    order: int,
    m: dict[str, np.ndarray],
    n: int,
    total_before: int,
    dt: float,
    epu: int,
) -> list[dict[str, Any]]:
    label = logs.order_label(order_names(order))
    return [
        {
            "Workflow_ID": iteration,
            "Workflow_Order": label,
            "Update": u + 1,
            "Episodes": epu,
            "Total_Episodes_Sampled": total_before + (u + 1) * epu,
            "Env_Reward": m["env_return"][u],
            "Alignment_Bonus": m["alignment"][u],
            "Total_Reward": m["total_return"][u],
            "Compliance": m["compliance"][u],
            "Avg_Fixes": m["fixes"][u],
            "Collection_Time": dt / max(n, 1),
            "Update_Time": 0.0,
        }
        for u in range(n)
    ]


def _start(cfg: WorkflowConfig, out_dir: str | Path | None, kind: str) -> Path | None:
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        logs.write_json(out / "experiment_config.json", {"command": kind, **cfg.to_dict()})
    return out


def _best(rows: list[dict[str, Any]], threshold: float) -> dict[str, Any] | None:
    """Best evaluated workflow: the highest evaluation env return among those whose policy is
    compliant in evaluation (>= threshold); the latest evaluation of a revisited workflow counts.
    With none compliant, the most compliant one (``best_is_compliant`` false)."""
    latest: dict[int, dict[str, Any]] = {}
    for r in rows:
        latest[r["order"]] = r
    if not latest:
        return None
    cands = list(latest.values())
    ok = [r for r in cands if r["eval_compliance"] >= threshold]
    if ok:
        return max(ok, key=lambda r: r["eval_env_return"])
    return max(cands, key=lambda r: (r["eval_compliance"], r["eval_env_return"]))


def _summary_best(best: dict[str, Any] | None, threshold: float) -> dict[str, Any]:
    if best is None:
        return {"best_order": None, "best_env_return": None, "best_compliance": None}
    return {
        "best_order": order_names(best["order"]),
        "best_order_letters": order_letters(best["order"]),
        "best_order_index": best["order"],
        "best_env_return": best["eval_env_return"],
        "best_env_return_std": best["eval_env_return_std"],
        "best_compliance": best["eval_compliance"],
        "best_fixes": best["eval_fixes"],
        "best_is_compliant": bool(best["eval_compliance"] >= threshold),
    }


def _eval_row(ev: dict[str, Any]) -> dict[str, float]:
    return {
        "eval_env_return": float(ev["env_return"]),
        "eval_env_return_std": float(ev["env_return_std"]),
        "eval_compliance": float(ev["compliance"]),
        "eval_fixes": float(ev["fixes"]),
    }


# --------------------------------------------------------------------------------------------
# search
# --------------------------------------------------------------------------------------------


def search(
    cfg: WorkflowConfig,
    *,
    out_dir: str | Path | None = None,
    verbose: bool = False,
    env: EnvSpec | None = None,
) -> SearchResult:
    """Run the workflow search (``cfg.mode`` independent: GP-UCB; universal: one policy).

    ``env`` injects ``(WorkflowEnv-like, env params)`` instead of ``ppo.make_env(cfg)`` (tests).
    """
    if cfg.mode == "universal":
        return _search_universal(cfg, out_dir=out_dir, verbose=verbose, env=env)
    t_start, cpu_start = time.perf_counter(), time.process_time()
    out = _start(cfg, out_dir, "search")
    progs = _programs(cfg, cfg.cap_updates, cfg.eval_episodes, vmapped=0, env=env)
    if verbose:
        print(
            f"compiled in {progs.compile_time:.1f}s: {cfg.episodes_per_update} episodes per "
            f"update, <= {cfg.cap_updates} updates per workflow, "
            f"{cfg.eval_episodes_run} evaluation episodes; budget {cfg.total_episodes:,} "
            f"episodes vs {cfg.red_agent}",
            flush=True,
        )
    train_log = logs.CsvTable(out / "training_log.csv", logs.TRAINING_COLUMNS) if out else None
    gp_log = logs.CsvTable(out / "gp_sampling_log.csv", logs.GP_COLUMNS) if out else None

    rng = np.random.default_rng(cfg.seed)
    first = check_order(cfg.first_order, "first_order") if cfg.first_order else None
    selector = make_selector(cfg, rng, first)
    root = jax.random.key(cfg.seed)
    key_init, key_train = jax.random.split(root)
    epu = cfg.episodes_per_update
    trained: dict[int, Any] = {}
    trained_order: list[int] = []
    last: int | None = None
    rows: list[dict[str, Any]] = []
    used = 0
    eval_steps = 0
    iteration = 0
    while cfg.total_episodes - used >= epu and (
        cfg.max_workflows == 0 or iteration < cfg.max_workflows
    ):
        iteration += 1
        choice = selector.select()  # type: ignore[attr-defined]
        o = choice.order
        if cfg.inherit == "previous" and last is not None:
            p0, source = trained[last], last
        elif o in trained:
            p0, source = trained[o], o
        elif cfg.inherit == "nearest_kendall" and trained_order:
            source = _nearest_trained(o, trained_order)
            p0 = trained[source]
        else:
            p0, source = progs.init(jax.random.fold_in(key_init, iteration)), None
        max_updates = min(cfg.cap_updates, (cfg.total_episodes - used) // epu)
        t0 = time.perf_counter()
        run = progs.train(
            p0, jnp.int32(o), jax.random.fold_in(key_train, iteration), jnp.int32(max_updates)
        )
        run = jax.device_get(run)
        dt = time.perf_counter() - t0
        n = int(run.updates)
        if train_log is not None:
            train_log.append(_update_rows(iteration, o, run.metrics, n, used, dt, epu))
        used += n * epu
        eval_steps += cfg.eval_episodes_run * cfg.max_steps
        trained[o] = run.params
        if o not in trained_order:
            trained_order.append(o)
        last = o
        success = bool(run.success)
        ev = _eval_row(run.evaluation)
        value = (
            ev["eval_env_return"]
            if cfg.gp_target == "evaluation"
            else float(run.metrics["env_return"][n - 1])
        )
        fed = success or cfg.feed_failures
        if fed:
            selector.observe(o, value)  # type: ignore[attr-defined]
        row = {
            "iteration": iteration,
            "order": o,
            "letters": order_letters(o),
            "ucb": choice.ucb,
            "selection": choice.method,
            "warm_start_from": None if source is None else order_letters(source),
            "updates": n,
            "episodes": n * epu,
            "episodes_used": used,
            "success": success,
            "train_compliance": float(run.metrics["compliance"][n - 1]),
            "train_env_return": float(run.metrics["env_return"][n - 1]),
            "gp_value": value,
            "gp_updated": fed,
            "wall_s": dt,
            **ev,
        }
        rows.append(row)
        if gp_log is not None:
            gp_log.append(
                [
                    {
                        "Iteration": iteration,
                        "Workflow": logs.order_label(order_names(o)),
                        "UCB_Score": choice.ucb,
                        "Reward": value,
                        "Final_Compliance": row["train_compliance"],
                        "Episodes_Trained": n * epu,
                        "GP_Updated": fed,
                    }
                ]
            )
        if out is not None and cfg.checkpoints:
            logs.save_params(
                out / "checkpoints" / f"workflow_{iteration}_{order_letters(o)}.npz",
                run.params,
                {k: v for k, v in row.items() if k != "ucb"} | {"order_names": order_names(o)},
            )
        if verbose:
            elapsed = time.perf_counter() - t_start
            mark = "ok" if success else "missed"
            print(
                _progress(
                    used,
                    cfg.total_episodes,
                    elapsed,
                    used * cfg.max_steps + eval_steps,
                    f"wf {iteration} {order_letters(o)}: {n} upd, comp "
                    f"{row['train_compliance']:.2f} {mark}, eval {ev['eval_env_return']:.1f} "
                    f"@ {ev['eval_compliance']:.2f}",
                ),
                flush=True,
            )
    wall = time.perf_counter() - t_start
    best = _best(rows, cfg.threshold)
    summary = {
        "command": "search",
        "mode": cfg.mode,
        "selector": cfg.selector,
        "red_agent": cfg.red_agent,
        **_summary_best(best, cfg.threshold),
        "episodes_used": used,
        "episodes_unused": cfg.total_episodes - used,
        "env_steps": used * cfg.max_steps,
        "eval_env_steps": eval_steps,
        "workflows_evaluated": len(rows),
        "unique_workflows": len(trained_order),
        "successes": int(sum(r["success"] for r in rows)),
        "wall_time_s": wall,
        "cpu_time_s": time.process_time() - cpu_start,
        "compile_time_s": progs.compile_time,
        "env_steps_per_s": (used * cfg.max_steps + eval_steps) / max(wall, 1e-9),
        "workflows": rows,
    }
    if out is not None:
        logs.write_json(out / "summary.json", summary)
        plot_search(
            out / "search.png",
            rows,
            cfg.threshold,
            f"workflow search vs {cfg.red_agent}: {len(rows)} workflows, {used:,} episodes",
        )
    if verbose:
        _print_done(summary)
    return SearchResult(summary=summary, workflows=rows, params=trained, out_dir=out)


def _print_done(s: dict[str, Any]) -> None:
    best = s.get("best_order_letters", "none")
    ret, comp = s.get("best_env_return"), s.get("best_compliance")
    ret_s = f"{ret:.2f}" if isinstance(ret, float) else "n/a"
    comp_s = f"{comp:.3f}" if isinstance(comp, float) else "n/a"
    print(
        f"done: {s['episodes_used']:,} episodes ({s['env_steps']:,} training env steps + "
        f"{s['eval_env_steps']:,} evaluation) in {s['wall_time_s']:.1f}s wall, "
        f"{s['cpu_time_s']:.1f}s CPU "
        f"({s['env_steps_per_s']:,.0f} steps/s, compile {s['compile_time_s']:.1f}s); "
        f"{s['workflows_evaluated']} workflows; best {best}: env return {ret_s}, "
        f"compliance {comp_s}",
        flush=True,
    )


# --------------------------------------------------------------------------------------------
# universal mode
# --------------------------------------------------------------------------------------------


def _evaluate_all_orders(
    cfg: WorkflowConfig, params: Any, key: jax.Array, episodes: int, env: EnvSpec | None
) -> list[dict[str, Any]]:
    """Evaluate one policy on every workflow (``sweep_chunk`` orders per vmapped call)."""
    env, env_params = wppo.make_env(cfg) if env is None else env
    ev = wppo.make_evaluate(cfg, env, env_params, episodes)
    chunk = cfg.sweep_chunk
    fn = jax.jit(jax.vmap(ev, in_axes=(None, 0, 0)))
    out: list[dict[str, Any]] = []
    for start in range(0, NUM_ORDERS, chunk):
        idx = np.arange(start, start + chunk) % NUM_ORDERS
        res = jax.device_get(
            fn(
                params,
                jnp.asarray(idx, jnp.int32),
                jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.asarray(idx)),
            )
        )
        for j, o in enumerate(idx):
            if start + j >= NUM_ORDERS:
                break
            out.append(
                {"order": int(o), "letters": order_letters(int(o))}
                | _eval_row({k: v[j] for k, v in res.items()})
            )
    return out


def _search_universal(
    cfg: WorkflowConfig, *, out_dir: str | Path | None, verbose: bool, env: EnvSpec | None
) -> SearchResult:
    """One policy trained on all 120 workflows (each episode draws its order), for the whole
    budget; then every workflow is evaluated and the best compliant one reported."""
    t_start, cpu_start = time.perf_counter(), time.process_time()
    out = _start(cfg, out_dir, "search (universal)")
    env_spec = env
    env, env_params = wppo.make_env(cfg) if env is None else env
    per_chunk = max(1, min(10, cfg.budget_updates))
    chunk_fn = wppo.make_universal_chunk(cfg, env, env_params, per_chunk)
    tx = wppo.make_optimizer(cfg)
    root = jax.random.key(cfg.seed)
    key_init, key_train, key_eval = jax.random.split(root, 3)
    params = jax.jit(wppo.make_init_params(cfg))(key_init)
    opt = tx.init(params)
    t0 = time.perf_counter()
    compiled = jax.jit(chunk_fn).lower(params, opt, key_train).compile()
    compile_time = time.perf_counter() - t0
    train_log = logs.CsvTable(out / "training_log.csv", logs.TRAINING_COLUMNS) if out else None
    epu = cfg.episodes_per_update
    done = 0
    key = key_train
    while done + per_chunk <= cfg.budget_updates:
        t1 = time.perf_counter()
        params, opt, key, m = compiled(params, opt, key)
        m = jax.device_get(m)
        dt = time.perf_counter() - t1
        if train_log is not None:
            rows = _update_rows(0, 0, m, per_chunk, done * epu, dt, epu)
            for i, r in enumerate(rows):
                r["Workflow_Order"] = "universal (order drawn per episode)"
                r["Update"] = done + i + 1
            train_log.append(rows)
        done += per_chunk
        if verbose:
            print(
                _progress(
                    done * epu,
                    cfg.total_episodes,
                    time.perf_counter() - t_start,
                    done * epu * cfg.max_steps,
                    f"universal: comp {float(m['compliance'][-1]):.2f}, "
                    f"return {float(m['env_return'][-1]):.1f}",
                ),
                flush=True,
            )
    used = done * epu
    evals = _evaluate_all_orders(cfg, params, key_eval, cfg.eval_episodes_run, env_spec)
    for r in evals:
        r["success"] = r["eval_compliance"] >= cfg.threshold
        r["episodes_used"] = used
    wall = time.perf_counter() - t_start
    eval_steps = NUM_ORDERS * cfg.eval_episodes_run * cfg.max_steps
    best = _best(evals, cfg.threshold)
    summary = {
        "command": "search",
        "mode": "universal",
        "red_agent": cfg.red_agent,
        **_summary_best(best, cfg.threshold),
        "episodes_used": used,
        "episodes_unused": cfg.total_episodes - used,
        "env_steps": used * cfg.max_steps,
        "eval_env_steps": eval_steps,
        "workflows_evaluated": len(evals),
        "compliant_workflows": int(sum(r["success"] for r in evals)),
        "mean_eval_compliance": float(np.mean([r["eval_compliance"] for r in evals])),
        "mean_eval_env_return": float(np.mean([r["eval_env_return"] for r in evals])),
        "wall_time_s": wall,
        "cpu_time_s": time.process_time() - cpu_start,
        "compile_time_s": compile_time,
        "env_steps_per_s": (used * cfg.max_steps + eval_steps) / max(wall, 1e-9),
        "workflows": evals,
    }
    if out is not None:
        logs.write_json(out / "summary.json", summary)
        if cfg.checkpoints:
            logs.save_params(
                out / "checkpoints" / "universal_agent.npz", params, {"mode": "universal"}
            )
        plot_search(out / "search.png", evals, cfg.threshold, "universal policy, every workflow")
    if verbose:
        _print_done(summary)
    return SearchResult(summary=summary, workflows=evals, params={-1: params}, out_dir=out)


# --------------------------------------------------------------------------------------------
# sweep: all 120 workflows
# --------------------------------------------------------------------------------------------


def sweep(
    cfg: WorkflowConfig,
    *,
    out_dir: str | Path | None = None,
    verbose: bool = False,
    env: EnvSpec | None = None,
) -> SearchResult:
    """Train and evaluate every one of the 120 workflows (``sweep_episodes_per_workflow`` each,
    the search's stop rule), ``sweep_chunk`` at a time in one vmapped program; from scratch, or
    each fine-tuned from the checkpoint ``sweep_init`` (same network).

    Raises:
        FileNotFoundError, ValueError: ``sweep_init`` is missing or does not fit the network
            (before anything is compiled).
    """
    t_start, cpu_start = time.perf_counter(), time.process_time()
    init_params = load_policy(cfg.sweep_init, cfg).params if cfg.sweep_init else None
    out = _start(cfg, out_dir, "sweep")
    epu = cfg.episodes_per_update
    cap = cfg.sweep_episodes_per_workflow // epu
    chunk = min(cfg.sweep_chunk, NUM_ORDERS)
    progs = _programs(cfg, cap, cfg.eval_episodes, vmapped=chunk, env=env)
    if verbose:
        print(
            f"compiled in {progs.compile_time:.1f}s: {chunk} workflows per program, <= {cap} "
            f"updates x {epu} episodes each",
            flush=True,
        )
    train_log = logs.CsvTable(out / "training_log.csv", logs.TRAINING_COLUMNS) if out else None
    root = jax.random.key(cfg.seed)
    key_init, key_train = jax.random.split(root)
    rows: list[dict[str, Any]] = []
    params_by_order: dict[int, Any] = {}
    used = 0
    for start in range(0, NUM_ORDERS, chunk):
        idx = np.arange(start, start + chunk) % NUM_ORDERS  # the last chunk wraps (ignored)
        keys_i = jnp.asarray(idx)
        if init_params is None:
            # one init per workflow (init_each): a vmapped orthogonal init can deadlock XLA:CPU
            p0 = init_each(lambda i: progs.init(jax.random.fold_in(key_init, i)), keys_i)
        else:
            p0 = jax.tree.map(lambda x: jnp.broadcast_to(x, (chunk, *x.shape)), init_params)
        t0 = time.perf_counter()
        run = progs.train(
            p0,
            jnp.asarray(idx, jnp.int32),
            jax.vmap(lambda i: jax.random.fold_in(key_train, i))(keys_i),
            jnp.int32(cap),
        )
        run = jax.device_get(run)
        dt = time.perf_counter() - t0
        for j, o in enumerate(idx):
            if start + j >= NUM_ORDERS:
                break
            o = int(o)
            n = int(run.updates[j])
            m = {k: v[j] for k, v in run.metrics.items()}
            if train_log is not None:
                train_log.append(_update_rows(o + 1, o, m, n, used, dt / chunk, epu))
            used += n * epu
            params_by_order[o] = jax.tree.map(lambda x, j=j: x[j], run.params)
            rows.append(
                {
                    "iteration": o + 1,
                    "order": o,
                    "letters": order_letters(o),
                    "updates": n,
                    "episodes": n * epu,
                    "episodes_used": used,
                    "success": bool(run.success[j]),
                    "train_compliance": float(m["compliance"][n - 1]),
                    "train_env_return": float(m["env_return"][n - 1]),
                    **_eval_row({k: v[j] for k, v in run.evaluation.items()}),
                }
            )
        if verbose:
            done = min(start + chunk, NUM_ORDERS)
            ok = sum(r["success"] for r in rows)
            print(
                _progress(
                    done,
                    NUM_ORDERS,
                    time.perf_counter() - t_start,
                    used * cfg.max_steps,
                    f"{used:,} episodes, {ok} reached {cfg.threshold:.2f}",
                    unit="workflows",
                ),
                flush=True,
            )
    wall = time.perf_counter() - t_start
    best = _best(rows, cfg.threshold)
    summary = {
        "command": "sweep",
        "red_agent": cfg.red_agent,
        "sweep_init": cfg.sweep_init or "scratch",
        **_summary_best(best, cfg.threshold),
        "episodes_used": used,
        "env_steps": used * cfg.max_steps,
        "eval_env_steps": NUM_ORDERS * cfg.eval_episodes_run * cfg.max_steps,
        "workflows_evaluated": len(rows),
        "successes": int(sum(r["success"] for r in rows)),
        "wall_time_s": wall,
        "cpu_time_s": time.process_time() - cpu_start,
        "compile_time_s": progs.compile_time,
        "env_steps_per_s": (used + NUM_ORDERS * cfg.eval_episodes_run)
        * cfg.max_steps
        / max(wall, 1e-9),
        "workflows": rows,
    }
    if out is not None:
        logs.write_json(out / "summary.json", summary)
        table = logs.CsvTable(out / "sweep.csv", list(rows[0].keys()))
        table.append(rows)
        plot_search(out / "search.png", rows, cfg.threshold, "sweep: all 120 workflows")
        if cfg.checkpoints:
            for o, p in params_by_order.items():
                logs.save_params(
                    out / "checkpoints" / f"workflow_{o + 1}_{order_letters(o)}.npz",
                    p,
                    {"order": o, "order_names": order_names(o)},
                )
    if verbose:
        _print_done(summary)
    return SearchResult(summary=summary, workflows=rows, params=params_by_order, out_dir=out)


# --------------------------------------------------------------------------------------------
# baselines
# --------------------------------------------------------------------------------------------

SCRIPTED_BASELINES = ("random", "greedy_exact", "greedy_host")


def baselines(
    cfg: WorkflowConfig,
    *,
    out_dir: str | Path | None = None,
    verbose: bool = False,
    scripted: bool = True,
    ppo: bool = True,
) -> SearchResult:
    """The search's baselines under the same evaluation (``eval_episodes_run`` stochastic
    episodes, env return without alignment, compliance against ``baseline_order``):

    * scripted (``jaxcage.workflows.baselines``): random, greedy restore (exact and host-level)
      on ``baseline_order``, and the repo's 6 canonical fixed orders (each scored against its
      own order);
    * PPO without the workflow input (52 inputs, env reward only, no early stop), trained on
      the whole ``total_episodes`` budget: the repo's ``train_parallel_baseline.py`` like-for-like.
    """
    # By module path: the package attribute ``baselines`` is this function (see __init__).
    wb = importlib.import_module("jaxcage.workflows.baselines")

    t_start, cpu_start = time.perf_counter(), time.process_time()
    out = _start(cfg, out_dir, "baselines")
    order = check_order(cfg.baseline_order, "baseline_order")
    spec = cfg.compliance_spec()
    n_eval = cfg.eval_episodes_run
    rows: list[dict[str, Any]] = []

    def add(
        name: str,
        o: int,
        res: dict[str, Any],
        episodes: int,
        wall: float,
        std: float | None = None,  # the per-episode std when ``res`` holds means only
    ) -> None:
        ret = np.asarray(res["env_return"], dtype=float)
        row = {
            "baseline": name,
            "order": o,
            "letters": order_letters(o),
            "eval_env_return": float(ret.mean()),
            "eval_env_return_std": float(ret.std()) if std is None else std,
            "eval_compliance": float(np.mean(res["compliance"])),
            "eval_fixes": float(np.mean(res["fixes"])),
            "training_episodes": episodes,
            "wall_s": wall,
        }
        rows.append(row)
        if verbose:
            print(
                f"{name:>18} ({order_letters(o)}): env return {row['eval_env_return']:8.2f} "
                f"+- {row['eval_env_return_std']:6.2f}, compliance {row['eval_compliance']:.3f}, "
                f"fixes {row['eval_fixes']:.1f} ({wall:.1f}s)",
                flush=True,
            )

    if scripted:
        named = [(n, wb.get_policy(n), order) for n in SCRIPTED_BASELINES]
        named += [(n, p, o) for n, (o, p) in wb.FIXED_ORDER_POLICIES.items()]
        for name, policy, o in named:
            t0 = time.perf_counter()
            res = wb.evaluate_policy(
                policy,
                o,
                episodes=n_eval,
                seed=cfg.seed,
                red=cfg.red_agent,
                green=cfg.green_agent,
                spec=spec,
                max_steps=cfg.max_steps,
            )
            add(name, o, res, 0, time.perf_counter() - t0)

    if ppo:
        pcfg = cfg.replace(
            workflow_input=False,
            alignment=False,
            early_stop=False,
            patience_updates=0,
            max_episodes_per_workflow=cfg.budget_updates * cfg.episodes_per_update,
        )
        t0 = time.perf_counter()
        progs = _programs(pcfg, pcfg.cap_updates, pcfg.eval_episodes, vmapped=0, env=None)
        root = jax.random.key(cfg.seed)
        key_init, key_train = jax.random.split(root)
        run = progs.train(
            progs.init(key_init), jnp.int32(order), key_train, jnp.int32(pcfg.cap_updates)
        )
        run = jax.device_get(run)
        n = int(run.updates)
        if out is not None:
            table = logs.CsvTable(out / "ppo_no_workflow_training_log.csv", logs.TRAINING_COLUMNS)
            table.append(
                _update_rows(
                    0, order, run.metrics, n, 0, time.perf_counter() - t0, pcfg.episodes_per_update
                )
            )
            if cfg.checkpoints:
                logs.save_params(
                    out / "checkpoints" / "ppo_no_workflow.npz", run.params, {"updates": n}
                )
        ev = {k: np.asarray(v) for k, v in run.evaluation.items()}
        res = {"env_return": ev["env_return"], "compliance": ev["compliance"], "fixes": ev["fixes"]}
        wall = time.perf_counter() - t0
        std = float(ev["env_return_std"])
        add("ppo_no_workflow", order, res, n * pcfg.episodes_per_update, wall, std)
        rows[-1]["compile_time_s"] = progs.compile_time

    wall = time.perf_counter() - t_start
    summary = {
        "command": "baselines",
        "red_agent": cfg.red_agent,
        "baseline_order": order_names(order),
        "eval_episodes": n_eval,
        "wall_time_s": wall,
        "cpu_time_s": time.process_time() - cpu_start,
        "baselines": rows,
    }
    if out is not None:
        logs.write_json(out / "summary.json", summary)
        table = logs.CsvTable(out / "baselines.csv", list(rows[0].keys()) if rows else ["baseline"])
        table.append(rows)
    return SearchResult(summary=summary, workflows=rows, params={}, out_dir=out)
