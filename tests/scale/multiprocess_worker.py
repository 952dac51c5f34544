"""One process of the two-process ``jax.distributed`` tests (tests/test_sharding.py). Both processes
train one policy together (the envs split over the two processes' CPU devices, gradients
all-reduced over gloo). Modes:

- ``train``: the tiny run in full, then stopped after one update and resumed to the end, then the
  ``LONG`` run in memory (the reference for the killed run).
- ``victim``: the ``LONG`` run with a checkpoint after every update, until the test SIGKILLs both
  processes part-way through.
- ``resume``: resume the killed ``LONG`` run to the end.

Prints one ``RESULT`` JSON line (not in ``victim`` mode, which is killed first)."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import jax
import numpy as np
from tiny_config import BASE

from jaxcage.ppo.train import train

# Long enough that the test kills it between checkpoints: checkpointing every update, two processes
# do ~10 updates/s on 2 CPU cores.
LONG_UPDATES = 300
LONG = BASE.replace(total_timesteps=BASE.batch_size * LONG_UPDATES)


def digest(tree) -> str:
    h = hashlib.sha256()
    for leaf in jax.tree.leaves(tree):
        h.update(np.ascontiguousarray(np.asarray(leaf)).tobytes())
    return h.hexdigest()


def main(mode: str, process_id: int, port: int, out: str) -> None:
    dist = {"coordinator": f"localhost:{port}", "num_processes": 2, "process_id": process_id}
    cfg, long = BASE.replace(**dist), LONG.replace(**dist)
    result: dict = {}
    if mode == "train":
        full = train(cfg, out_dir=Path(out) / "full", verbose=True)
        train(cfg, out_dir=Path(out) / "stopped", stop_after_updates=1)
        resumed = train(cfg, out_dir=Path(out) / "stopped", resume=True)
        result |= {
            "devices": full.num_devices,
            "processes": full.num_processes,
            "full": digest(full.params),
            "resumed": digest(resumed.params),
            "updates": [int(u) for u in resumed.metrics["update"][0]],
            "long": digest(train(long.replace(updates_per_chunk=100)).params),
            "long_updates": LONG_UPDATES,
        }
    elif mode == "victim":
        train(long, out_dir=Path(out) / "killed", verbose=True)
    elif mode == "resume":
        # Host-loop fields only (the same compiled update): resume in chunks of 100 updates.
        fast = long.replace(updates_per_chunk=100, checkpoint_every=100)
        resumed = train(fast, out_dir=Path(out) / "killed", resume=True)
        result |= {
            "long": digest(resumed.params),
            "updates": [int(u) for u in resumed.metrics["update"][0]],
        }
    else:
        raise ValueError(f"unknown mode {mode!r}")
    result["process"] = jax.process_index()  # after train: it initialises jax.distributed
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
