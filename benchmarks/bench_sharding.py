"""What scale-out costs: the trainer's sharded program on 1..N devices, its collectives, its rate.

For each device count of ``--devices`` the default config's chunk program (one policy, its envs
and minibatches split over the devices: the ``envs`` layout of ``jaxcage.sharding``) is compiled
exactly as ``jaxcage train`` compiles it, and the script prints:

* the collectives in the compiled HLO (all-reduce, all-gather, all-to-all, ...): how many, and the
  bytes of their results, each counted once per place it appears in the program (a collective
  inside the minibatch loop runs ``update_epochs x num_minibatches`` times per update);
* with ``minibatch_shuffle`` global (one permutation of the whole batch, the same result as one
  device) and local (each device shuffles its own envs' samples);
* the analytic gradient all-reduce per update: parameter bytes x minibatch steps;
* steady-state env steps/s (median of ``--repeats`` calls of ``--updates`` updates).

On a CPU host the devices are forced (``--xla_force_host_platform_device_count``) and share the
same cores, so steps/s across device counts only shows the partitioned program's overhead, not a
speed-up; on a multi-GPU host they are real devices. Usage::

    python benchmarks/bench_sharding.py --devices 1 4 --updates 2 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time


def _parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    p.add_argument("--config", default="default")
    p.add_argument("--devices", type=int, nargs="+", default=[1, 4])
    p.add_argument("--updates", type=int, default=2, help="updates per timed call")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    return p.parse_args()


ARGS = _parse()
if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    # Harmless on GPU hosts (it only adds host CPU devices, which JAX does not pick by default).
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "")
        + f" --xla_force_host_platform_device_count={max(ARGS.devices)}"
    ).strip()

import jax  # noqa: E402
import numpy as np  # noqa: E402

from jaxcage.ppo.config import load_config, parse_override  # noqa: E402
from jaxcage.ppo.train import compile_chunk, make_placed_init, place  # noqa: E402

COLLECTIVES = ("all-reduce", "all-gather", "all-to-all", "collective-permute", "reduce-scatter")
_SHAPE = re.compile(r"\b(pred|s8|u8|s16|u16|bf16|f16|s32|u32|f32|s64|u64|f64)\[([0-9,]*)\]")
_BYTES = {"pred": 1, "s8": 1, "u8": 1, "s16": 2, "u16": 2, "bf16": 2, "f16": 2}


def _bytes(type_text: str) -> int:
    total = 0
    for dtype, dims in _SHAPE.findall(type_text):
        n = int(np.prod([int(d) for d in dims.split(",") if d])) if dims else 1
        total += n * _BYTES.get(dtype, 8 if dtype.endswith("64") else 4)
    return total


def collectives(hlo: str) -> dict[str, dict[str, int]]:
    """Per collective kind: instructions in the HLO text and the bytes of their results."""
    out: dict[str, dict[str, int]] = {}
    for line in hlo.splitlines():
        m = re.match(r"\s*(?:ROOT )?%?[\w.-]+ = (.+?) ([\w-]+)\(", line)
        if not m or m.group(2).removesuffix("-start") not in COLLECTIVES:
            continue
        kind = m.group(2).removesuffix("-start")
        rec = out.setdefault(kind, {"count": 0, "bytes": 0})
        rec["count"] += 1
        rec["bytes"] += _bytes(m.group(1))
    return out


def main() -> None:
    overrides = dict(parse_override(o) for o in ARGS.overrides)
    base = load_config(ARGS.config, **{"num_seeds": 1, **overrides})
    base = base.replace(total_timesteps=base.batch_size * ARGS.updates * (ARGS.repeats + 2))
    print(f"jax {jax.__version__}, {len(jax.devices())} {jax.devices()[0].platform} device(s)")
    cases = [
        (d, sh) for d in ARGS.devices for sh in (("global", "local") if d > 1 else ("global",))
    ]
    for d, shuffle in cases:
        cfg = base.replace(num_devices=d, minibatch_shuffle=shuffle)
        placement = place(cfg)
        runner = make_placed_init(cfg, placement)()
        t = time.perf_counter()
        compiled = compile_chunk(cfg, placement, ARGS.updates, runner)
        compile_s = time.perf_counter() - t
        coll = collectives(compiled.as_text())
        n_params = sum(
            int(np.prod(x.shape[1:])) for x in jax.tree.leaves(runner.train_state.params)
        )
        steps = cfg.update_epochs * cfg.num_minibatches
        times = []
        runner, m = compiled(runner)  # warm-up
        jax.block_until_ready(m)
        for _ in range(ARGS.repeats):
            t = time.perf_counter()
            runner, m = compiled(runner)
            jax.block_until_ready(m)
            times.append(time.perf_counter() - t)
        sec = float(np.median(times))
        record = {
            "placement": placement.describe(),
            "layout": placement.layout,
            "minibatch_shuffle": shuffle,
            "compile_s": round(compile_s, 2),
            "steps_per_s": ARGS.updates * cfg.batch_size / sec,
            "seconds_per_update": sec / ARGS.updates,
            "params": n_params,
            "grad_allreduce_bytes_per_update": 4 * n_params * steps if d > 1 else 0,
            "minibatch_steps_per_update": steps,
            "hlo_collectives": coll,
        }
        print(json.dumps(record), flush=True)


if __name__ == "__main__":
    sys.exit(main())
