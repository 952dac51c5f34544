"""Checkpoint write/read time: jaxcage's one-file ``.npz`` (``ppo/checkpoint.py``) against
orbax-checkpoint's ``StandardCheckpointer``, on a real runner state (params, Adam state, envs).

Why it exists: the scale-out issue asked for orbax unless a measurement said otherwise. Both are
timed on the same state in the same run (median of ``--repeats``); orbax saves the raw key data
(it does not take typed PRNG keys). Usage::

    python benchmarks/bench_checkpoint.py --num-envs 256 --num-seeds 1 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp

from jaxcage import sharding as shd
from jaxcage.ppo import checkpoint as ckpt
from jaxcage.ppo.config import load_config
from jaxcage.ppo.train import make_placed_init, place


def _median(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    p.add_argument("--config", default="default")
    p.add_argument("--num-envs", type=int, default=256)
    p.add_argument("--num-seeds", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    cfg = load_config(args.config, num_envs=args.num_envs, num_seeds=args.num_seeds)
    placement = place(cfg)
    runner = make_placed_init(cfg, placement)()
    host = shd.fetch(runner)
    raw = jax.tree.map(
        lambda x: np.asarray(jax.random.key_data(x)) if shd._is_key(x) else np.asarray(x), host
    )
    nbytes = sum(np.asarray(x).nbytes for x in jax.tree.leaves(raw))
    tmp = Path(tempfile.mkdtemp())
    try:
        path = tmp / ckpt.CHECKPOINT_NAME
        rec = ckpt.Checkpoint(cfg, host, 0, 0.0, {"loss": np.zeros((cfg.num_seeds, 1000))})
        npz_save = _median(lambda: ckpt.save(path, rec), args.repeats)
        npz_load = _median(lambda: ckpt.load(path, host), args.repeats)
        checkpointer = ocp.StandardCheckpointer()
        target = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), raw)
        counter = iter(range(10**6))

        def orbax_save() -> None:
            checkpointer.save(tmp / f"orbax{next(counter)}", raw)
            checkpointer.wait_until_finished()

        orbax_save_s = _median(orbax_save, args.repeats)
        orbax_load = _median(lambda: checkpointer.restore(tmp / "orbax0", target), args.repeats)
        checkpointer.close()
        record = {
            "state_bytes": nbytes,
            "leaves": len(jax.tree.leaves(raw)),
            "npz_save_s": npz_save,
            "npz_load_s": npz_load,
            "orbax_save_s": orbax_save_s,
            "orbax_load_s": orbax_load,
            "orbax_over_npz_save": orbax_save_s / npz_save,
            "orbax_over_npz_load": orbax_load / npz_load,
        }
        print(json.dumps(record))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
