"""One process of the two-process ``jax.distributed`` test (tests/test_sharding.py): both processes
train one policy together (the envs split over the two processes' CPU devices, gradients
all-reduced over gloo), then a run stopped after one update (as if killed) is resumed to the end.
Prints one ``RESULT`` JSON line."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import jax
import numpy as np
from tiny_config import BASE

from jaxcage.ppo.train import train


def digest(tree) -> str:
    h = hashlib.sha256()
    for leaf in jax.tree.leaves(tree):
        h.update(np.ascontiguousarray(np.asarray(leaf)).tobytes())
    return h.hexdigest()


def main(process_id: int, port: int, out: str) -> None:
    cfg = BASE.replace(coordinator=f"localhost:{port}", num_processes=2, process_id=process_id)
    full = train(cfg, out_dir=Path(out) / "full", verbose=True)
    train(cfg, out_dir=Path(out) / "killed", stop_after_updates=1)
    resumed = train(cfg, out_dir=Path(out) / "killed", resume=True)
    result = {
        "process": jax.process_index(),
        "devices": full.num_devices,
        "processes": full.num_processes,
        "full": digest(full.params),
        "resumed": digest(resumed.params),
        "updates": [int(u) for u in resumed.metrics["update"][0]],
    }
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
