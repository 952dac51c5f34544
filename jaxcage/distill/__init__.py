"""Distillation: teach a trained defender a play PPO does not find, by imitation (DAgger).

A *teacher* is a defender's own action amended by a rule that reads the true environment state
(``teachers.py``); the *student* is a network of the same shape, warm-started from the defender,
that sees only what Blue sees (observation and policy memory) and is fitted to the teacher's
actions on the states the student itself visits (``dagger.py``). The result is an ordinary
exported agent (``jaxcage.export``): one network, no rules at play time.
"""

from jaxcage.distill.dagger import DistillConfig, IterationReport, distill
from jaxcage.distill.teachers import TEACHERS, Teacher

__all__ = ["TEACHERS", "DistillConfig", "IterationReport", "Teacher", "distill"]
