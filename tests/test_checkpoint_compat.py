"""A checkpoint written before a runner-state field was added still loads (ppo/checkpoint.py)."""

from __future__ import annotations

import io
import json

import jax
import numpy as np

from jaxcage.evaluation import load_run
from jaxcage.ppo import checkpoint as ckpt
from jaxcage.ppo.train import make_init, seed_keys
from tests.test_submission import CFG, fake_run


def test_a_checkpoint_without_the_red_guess_loads_with_the_guess_unmade(tmp_path):
    cfg = CFG.replace(num_seeds=2)
    run, _ = fake_run(tmp_path, cfg, best=1)
    path = run / ckpt.CHECKPOINT_NAME
    new = load_run(run)
    template_paths = jax.tree_util.tree_flatten_with_path(ckpt.load(path, _template(cfg)).runner)[0]
    guess = [
        i for i, (p, _) in enumerate(template_paths) if jax.tree_util.keystr(p).endswith("guess")
    ]
    assert guess  # the envs' policy memories have the field

    # Rewrite the file as a writer from before the field existed would have: those leaves absent.
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    header = json.loads(bytes(arrays.pop("__header__")).decode())
    leaves = [arrays.pop(f"leaf_{i:05d}") for i in range(header["num_leaves"])]
    kept = [a for i, a in enumerate(leaves) if i not in guess]
    arrays.update({f"leaf_{i:05d}": a for i, a in enumerate(kept)})
    header["num_leaves"] = len(kept)
    header["key_impls"] = {
        f"leaf_{[j for j in range(len(leaves)) if j not in guess].index(int(k[5:])):05d}": v
        for k, v in header["key_impls"].items()
    }
    arrays["__header__"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    path.write_bytes(buf.getvalue())

    old = ckpt.load(path, _template(cfg))
    old_leaves = jax.tree_util.tree_flatten_with_path(old.runner)[0]
    for i, (p, leaf) in enumerate(old_leaves):
        if i in guess:
            assert np.all(np.asarray(leaf) == -1), jax.tree_util.keystr(p)
    assert load_run(run).env_steps == new.env_steps
    np.testing.assert_array_equal(
        np.asarray(jax.tree.leaves(load_run(run).params)[0]),
        np.asarray(jax.tree.leaves(new.params)[0]),
    )


def _template(cfg):
    return jax.eval_shape(jax.vmap(make_init(cfg)), seed_keys(cfg))
