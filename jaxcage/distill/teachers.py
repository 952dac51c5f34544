"""Privileged teachers: rules that amend a defender's action from the true state.

A teacher sees what Blue cannot (Red's sessions, B_line's chosen user host); it is only used to
label states for a student network (``dagger.py``), never at play time.

``haraka_restore`` rests on the 606813b HarakaRCE quirk (``jaxcage.rules``,
``Flag.RESTORE_LOSES_PROCESS_VERSION``; PARITY.md): in CybORG at 606813b a Restore rebuilds the
host's Haraka process without its version, so ``HarakaRCE.test_exploit_works``
(``CybORG/Shared/Actions/ConcreteActions/HarakaRCE.py``) fails there afterwards. B_line's first
user host U (``CybORG/Agents/SimpleAgents/B_line.py``) is User3 or User4 in half the episodes,
and HarakaRCE is its top-ranked exploit on both. Restoring U once Red is root there, and removing
each user shell Red gets back before it can escalate, keeps B_line retrying its stage-2 exploit
of U (a failed stage 2 repeats itself, ``topology.BLINE_JUMPS``) instead of walking on to the
Enterprise host; with HarakaRCE dead, most retries fail. Under today's rules the same play is a
disaster (HarakaRCE re-roots U at once; BENCHMARKS.md "Distillation").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp

from jaxcage.constants import REMOVE_BASE, RESTORE_BASE, Host
from jaxcage.rules import RULE_NAMES, Flag, get_rule_set
from jaxcage.state import EnvState

# teacher(state Blue acts on, the defender's action there) -> the teacher's action
TeacherFn = Callable[[EnvState, jax.Array], jax.Array]


def haraka_restore(state: EnvState, action: jax.Array) -> jax.Array:
    """Against B_line with U in {User3, User4}: Restore U while Red is root there, else Remove
    a user shell of Red's on U (one Remove can kill: its PID was seen); otherwise ``action``."""
    u = jnp.clip(state.bline_user, 0)
    on = (state.bline_user == Host.USER3) | (state.bline_user == Host.USER4)
    root = state.red_priv[u] > 0
    shell = state.red_user_removable[u] > 0
    out = jnp.where(on & shell, REMOVE_BASE + u, action)
    return jnp.where(on & root, RESTORE_BASE + u, out).astype(jnp.int32)


@dataclasses.dataclass(frozen=True)
class Teacher:
    """A named teacher and the rule flag its play depends on (it is refused elsewhere)."""

    name: str
    fn: TeacherFn
    requires: Flag
    summary: str

    def rule_sets(self) -> tuple[str, ...]:
        """The rule sets this teacher's play is meant for."""
        return tuple(r for r in RULE_NAMES if self.requires in get_rule_set(r).flags)

    def check_rules(self, rules: str) -> None:
        """Raise ValueError if ``rules`` is not one this teacher applies to."""
        if rules not in self.rule_sets():
            raise ValueError(
                f"teacher {self.name!r} relies on {self.requires.name}, which only the rule sets "
                f"{list(self.rule_sets())} have; got rules={rules!r}"
            )


TEACHERS: dict[str, Teacher] = {
    t.name: t
    for t in (
        Teacher(
            name="haraka_restore",
            fn=haraka_restore,
            requires=Flag.RESTORE_LOSES_PROCESS_VERSION,
            summary="vs B_line on User3/User4: Restore the root host, then Remove each shell",
        ),
    )
}
