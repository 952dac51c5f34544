"""Equivalence of jaxcage with CybORG CAGE2: lockstep (level 1) and statistical (level 2) parity.

* ``policies``: Blue decision rules shared by both engines (numpy for CybORG, traced JAX).
* ``lockstep``: CybORG and jaxcage side by side, CybORG's draw outcomes forced into jaxcage,
  exact comparison of observation, reward, Red's action and the full state after every step.
* ``generate``: seeded CybORG return samples for the statistical cells (committed test data).
* ``stats``: Welch TOST of returns and per-step reward curves against those samples.

Run ``python -m jaxcage.parity --help``. Importing this package does not import CybORG.
"""
