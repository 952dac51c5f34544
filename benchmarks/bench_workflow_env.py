"""Workflow env: the scripted baselines' scores, the compliance overhead, and CybORG agreement.

Prints three tables and writes one JSON document:

1. baselines vs ``--red`` (default B_line), ``--episodes`` episodes each (jaxcage, one compiled
   program per policy): random, greedy exact and host-level on ``--order``, and the 6 canonical
   fixed orders (the repo's greedy heuristic on each): env return (mean, s.e.), compliance under
   the default rule (state rule, foothold excluded, 0.5 without fixes), compliance as the repo's
   greedy baseline logs it (1.0 without fixes) and fixes per episode; also, for the greedy
   policies, compliance under the faithful compromise (``any_red_session``);
2. env steps/s of ``WorkflowEnv`` (compliance in the step) against plain ``CageEnv``, the same
   random policy, ``--num-envs`` vmapped envs x ``--steps`` scanned steps, measured in the same run
   (the ratio is the overhead);
3. with ``--cyborg-episodes N``: the greedy baselines in csle-cyborg (compliance from
   ``get_agent_state('True')``), TOST of env return / compliance / fixes against jaxcage; with
   ``--checkpoint PATH`` (repeatable) a trained workflow policy of a search instead, on its own
   workflow, red agent and rule; ``--lockstep-episodes K`` also runs the first K CybORG episodes
   in lockstep (per-host Red sessions and compliance counters compared every step).

Usage::

    python benchmarks/bench_workflow_env.py --episodes 1000 --cyborg-episodes 50 \
        --out benchmarks/results/bench_workflow_env_cpu.json
    python benchmarks/bench_workflow_env.py --skip baselines overhead --cyborg-episodes 200 \
        --lockstep-episodes 5 --checkpoint runs/wf/checkpoints/workflow_244_DSUEH.npz
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import environment_info, write_json  # noqa: E402

from jaxcage.env import CageEnv, make_params  # noqa: E402
from jaxcage.parity.stats import REQUIRED_POWER, welch_tost  # noqa: E402
from jaxcage.workflows import orders  # noqa: E402
from jaxcage.workflows.baselines import FIXED_ORDER_POLICIES, evaluate_policy  # noqa: E402
from jaxcage.workflows.compliance import ComplianceSpec  # noqa: E402
from jaxcage.workflows.cyborg_eval import evaluate_in_cyborg  # noqa: E402
from jaxcage.workflows.env import WorkflowEnv  # noqa: E402
from jaxcage.workflows.policy import load_best, load_policy  # noqa: E402


def _summary(out: dict[str, np.ndarray]) -> dict[str, float]:
    n = out["env_return"].size
    return {
        "episodes": n,
        "env_return": float(out["env_return"].mean()),
        "env_return_se": float(out["env_return"].std(ddof=1) / np.sqrt(n)),
        "compliance": float(out["compliance"].mean()),
        "compliance_repo": float(out["compliance_repo"].mean()),
        "fixes": float(out["fixes"].mean()),
        "nofix_episodes": int((out["fixes"] == 0).sum()),
    }


def baselines_table(red: str, episodes: int, order: int, seed: int) -> list[dict[str, Any]]:
    rows = []
    cases = [(name, order) for name in ("random", "greedy_exact", "greedy_host")]
    cases += [(name, idx) for name, (idx, _) in FIXED_ORDER_POLICIES.items()]
    faithful = ComplianceSpec(compromise="any_red_session")
    for name, idx in cases:
        start = time.perf_counter()
        out = evaluate_policy(name, idx, episodes=episodes, seed=seed, red=red)
        row = {"policy": name, "order": orders.order_letters(idx), **_summary(out)}
        if name != "random":
            policy = "greedy_exact" if name in FIXED_ORDER_POLICIES else name
            alt = evaluate_policy(policy, idx, episodes=episodes, seed=seed, red=red, spec=faithful)
            row["compliance_any_red_session"] = float(alt["compliance"].mean())
        row["seconds"] = time.perf_counter() - start
        rows.append(row)
        print(
            f"{name:18s} {row['order']}  return {row['env_return']:9.2f} "
            f"± {row['env_return_se']:5.2f}"
            f"  compliance {row['compliance']:.3f} (repo {row['compliance_repo']:.3f}, any-session "
            f"{row.get('compliance_any_red_session', float('nan')):.3f})  fixes {row['fixes']:5.1f}"
            f"  [{row['seconds']:.0f}s incl. compile]",
            flush=True,
        )
    return rows


def _rollout_program(env: Any, wrapped: bool, num_envs: int, steps: int) -> Any:
    params = make_params("b_line")

    def one(key: jax.Array, order_idx: jax.Array) -> jax.Array:
        if wrapped:
            _, state = env.reset(key, params, order_idx)
        else:
            _, state = env.reset(key, params)

        def body(carry, k):  # noqa: ANN001, ANN202 - scan body
            state, total = carry
            ka, ks = jax.random.split(k)
            a = jax.random.randint(ka, (), 0, 145)
            if wrapped:
                _, state, r, ar, _, _ = env.step(ks, state, a, params)
                r = r + ar
            else:
                _, state, r, _, _ = env.step(ks, state, a, params)
            return (state, total + r), None

        (_, total), _ = jax.lax.scan(body, (state, jnp.float32(0.0)), jax.random.split(key, steps))
        return total

    return jax.jit(jax.vmap(one))


def overhead_table(num_envs: int, steps: int, repeats: int) -> dict[str, Any]:
    keys = jax.random.split(jax.random.key(0), num_envs)
    order_idx = jnp.arange(num_envs, dtype=jnp.int32) % orders.NUM_ORDERS
    record: dict[str, Any] = {"num_envs": num_envs, "steps": steps, "repeats": repeats}
    for label, env, wrapped in (
        ("cage_env", CageEnv(), False),
        ("workflow_env", WorkflowEnv(), True),
    ):
        program = _rollout_program(env, wrapped, num_envs, steps)
        start = time.perf_counter()
        compiled = program.lower(keys, order_idx).compile()
        compile_s = time.perf_counter() - start
        jax.block_until_ready(compiled(keys, order_idx))
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            jax.block_until_ready(compiled(keys, order_idx))
            times.append(time.perf_counter() - start)
        best = min(times)
        record[label] = {
            "compile_s": compile_s,
            "times_s": times,
            "steps_per_s": num_envs * steps / best,
        }
        print(
            f"{label:13s} {num_envs} envs x {steps} steps: "
            f"{num_envs * steps / best:12,.0f} steps/s "
            f"(best of {repeats}; compile {compile_s:.1f}s)",
            flush=True,
        )
    ratio = record["workflow_env"]["steps_per_s"] / record["cage_env"]["steps_per_s"]
    record["workflow_over_cage"] = ratio
    print(f"WorkflowEnv / CageEnv steps/s: {ratio:.3f}", flush=True)
    return record


Case = tuple[str, Any, int, ComplianceSpec]  # (label, policy name or PolicyFn, order, rule)

BASELINE_CASES: list[Case] = [
    ("greedy_host", "greedy_host", orders.order_index("DESHU"), ComplianceSpec()),
    ("greedy_exact", "greedy_exact", orders.order_index("DESHU"), ComplianceSpec()),
    ("greedy_exact", "greedy_exact", orders.order_index("UDESH"), ComplianceSpec()),
]


def checkpoint_case(path: str) -> tuple[Case, str]:
    """A trained workflow policy and its run's red agent: a ``checkpoints/*.npz`` file of a
    search, or a finished run directory (its best workflow, ``policy.load_best``)."""
    if Path(path).is_dir():
        tp = load_best(path)
        label = f"ppo {Path(path).name} best"
    else:
        tp = load_policy(path)
        label = f"ppo {Path(path).stem}"
    if tp.order is None:
        raise ValueError(f"{path} is a universal policy: pass its run directory instead")
    return (label, tp.policy, tp.order, tp.cfg.compliance_spec()), tp.cfg.red_agent


def cyborg_table(
    red: str, episodes: int, jax_episodes: int, cases: list[Case], lockstep_episodes: int = 0
) -> list[dict[str, Any]]:
    """Each case in CybORG (true-state compliance) against jaxcage: Welch TOST per quantity;
    the first ``lockstep_episodes`` CybORG episodes also run jaxcage in lockstep."""
    rows = []
    for name, policy, idx, spec in cases:
        if lockstep_episodes > 0:
            lock = evaluate_in_cyborg(
                policy, idx, episodes=lockstep_episodes, red=red, spec=spec, lockstep=True
            )
            print(
                f"{name:13s} {orders.order_letters(idx)} lockstep: {lock.steps_compared} steps "
                f"compared, {len(lock.mismatches)} mismatches",
                flush=True,
            )
        start = time.perf_counter()
        cy = evaluate_in_cyborg(policy, idx, episodes=episodes, red=red, spec=spec).episodes
        cy_s = time.perf_counter() - start
        jx = evaluate_policy(policy, idx, episodes=jax_episodes, seed=123, red=red, spec=spec)
        for key, margin in (("env_return", None), ("compliance", 0.05), ("fixes", 2.0)):
            t = welch_tost(cy[key], jx[key], margin=margin)
            ok = t.verdict != "DIFFERENT" and (t.equivalent or t.power < REQUIRED_POWER)
            row = {
                "policy": name,
                "order": orders.order_letters(idx),
                "red": red,
                "quantity": key,
                "cyborg_mean": t.mean_x,
                "cyborg_se": t.se_x,
                "jaxcage_mean": t.mean_y,
                "jaxcage_se": t.se_y,
                "margin": t.margin,
                "p": t.p,
                "power": t.power,
                "verdict": t.verdict,
                "consistent": ok,
                "cyborg_episodes": episodes,
                "cyborg_seconds": cy_s,
            }
            if lockstep_episodes > 0:
                row["lockstep_steps"] = lock.steps_compared
                row["lockstep_mismatches"] = len(lock.mismatches)
            rows.append(row)
            print(
                f"{name:13s} {orders.order_letters(idx)} {key:11s} cyborg {t.mean_x:9.3f} ± "
                f"{t.se_x:6.3f}  jaxcage {t.mean_y:9.3f} ± {t.se_y:6.3f}  margin {t.margin:6.2f}  "
                f"p {t.p:.2g}  power {t.power:.2f}  {t.verdict}",
                flush=True,
            )
        print(f"  ({episodes} CybORG episodes in {cy_s:.0f}s)", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--red", default="b_line")
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--order", default="DESHU", help="workflow of random/greedy (letters)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-envs", type=int, default=256)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cyborg-episodes", type=int, default=0)
    parser.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        help="a trained workflow policy (a search checkpoint .npz, or a finished search / sweep "
        "/ universal run directory: its best workflow) to score in CybORG instead of the greedy "
        "baselines; its run's red agent and compliance rule are used (repeatable)",
    )
    parser.add_argument(
        "--lockstep-episodes", type=int, default=0, help="CybORG episodes also run in lockstep"
    )
    parser.add_argument("--skip", nargs="*", default=(), choices=("baselines", "overhead"))
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    record: dict[str, Any] = {"environment": environment_info(), "args": vars(args)}
    if "baselines" not in args.skip:
        print(f"== baselines vs {args.red}, {args.episodes} episodes each", flush=True)
        order = orders.order_index(args.order)
        record["baselines"] = baselines_table(args.red, args.episodes, order, args.seed)
    if "overhead" not in args.skip:
        print("== compliance overhead (random policy)", flush=True)
        record["overhead"] = overhead_table(args.num_envs, args.steps, args.repeats)
    if args.cyborg_episodes > 0:
        print(
            f"== CybORG agreement ({args.cyborg_episodes} CybORG episodes per policy)", flush=True
        )
        jax_episodes = max(args.episodes, 1000)
        if args.checkpoint:
            record["cyborg"] = []
            for path in args.checkpoint:
                case, red = checkpoint_case(path)
                record["cyborg"] += cyborg_table(
                    red, args.cyborg_episodes, jax_episodes, [case], args.lockstep_episodes
                )
        else:
            record["cyborg"] = cyborg_table(
                args.red, args.cyborg_episodes, jax_episodes, BASELINE_CASES, args.lockstep_episodes
            )
    if args.out:
        write_json(args.out, record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
