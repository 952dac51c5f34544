"""Steps/s of ``jaxcage.train`` itself (host loop included, compilation excluded), to A/B the
trainer of two checkouts on the same machine in the same session::

    for tree in /path/to/before /path/to/after; do
        PYTHONPATH=$tree python benchmarks/bench_trainer_ab.py --updates 40 --rounds 3
    done

Each round trains ``--updates`` updates of ``--config`` (default: the default config, one seed)
and reports the median over the run's chunks of the ``steps_per_sec`` column; the first chunk is
dropped (it pays for first-touch allocations). Rounds alternate nothing by themselves: run the two
trees alternately (``--rounds 1`` several times) when the machine is shared. Only uses
``jaxcage.train`` and its metrics, so it runs on trees from before ``jaxcage.sharding`` too.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

import jaxcage
from jaxcage.ppo.config import load_config


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    p.add_argument("--config", default="default")
    p.add_argument("--updates", type=int, default=40)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = p.parse_args()
    overrides = dict(o.split("=", 1) for o in args.overrides)
    cfg = load_config(args.config, **overrides)
    cfg = cfg.replace(total_timesteps=args.updates * cfg.batch_size, checkpoint_every=10**6)
    for r in range(args.rounds):
        t = time.perf_counter()
        result = jaxcage.train(cfg)
        sps = result.metrics["steps_per_sec"][0]
        per_chunk = sps[:: cfg.updates_per_chunk][1:] if len(sps) > cfg.updates_per_chunk else sps
        record = {
            "tree": jaxcage.__file__,
            "round": r,
            "steps_per_s_median": float(np.median(per_chunk)),
            "chunks": len(per_chunk),
            "compile_s": result.compile_time,
            "wall_s": time.perf_counter() - t,
        }
        print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
