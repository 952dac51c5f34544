"""Rule sets: which version of CybORG's Scenario2 behaviour the environment reproduces.

CAGE Challenge 2's final leaderboard was scored on ``cage-challenge/cage-challenge-2`` at commit
``606813b`` (2022-08-12). Two fixes landed after it, and every later install (csle-cyborg
included) has them:

* ``3ead7fd`` (2022-08-16), ``CybORG/Shared/Enums.py::ProcessVersion.parse_string``: a value that
  is not one of the known version strings (e.g. an enum already parsed) is returned as is instead
  of ``UNKNOWN``. ``Simulator/Host.py::create_backup`` and ``restore`` rebuild every process from
  ``Process.get_state()``, whose ``process_version`` is already an enum, so before the fix a
  restored host's processes all had version ``UNKNOWN``. Only ``ConcreteActions/HarakaRCE.py``
  reads a version (``version.value < HARAKA_2_8_9.value``, and ``UNKNOWN`` is the largest value):
  **at 606813b, HarakaRCE fails on User3 / User4 once they have been Restored**, for the rest of the
  episode. The failed attempt leaves the port-25 connection event but no shell, file or PID.
* ``9421c8e`` (2022-08-19), ``Shared/Actions/AbstractActions/DiscoverNetworkServices.py`` and
  ``Simulator/Session.py::RedAbstractSession.clearports``: a port scan that returns the host now
  *replaces* Red session 0's remembered port list for that IP. **At 606813b the scanned ports are
  appended**: ports seen once (a decoy's, removed since by Restore) stay remembered, and keep
  offering ``ExploitRemoteService`` exploits that then fail.

CybORG++ (``alan-turing-institute/CybORG_plus_plus`` at ``c343476``) ships ``Debugged_CybORG``, a
copy of CybORG at ``9421c8e`` (both fixes above) with six more fixes (its README; every effect
below was read from its code, paths relative to ``Debugged_CybORG/CybORG/CybORG``):

1. ``Shared/Actions/AbstractActions/Remove.py``: Remove reports the last ``StopProcess``'s success
   instead of always True. Only Blue's action-success bit changes, which the ``ChallengeWrapper``
   vector and the reward never read (``EnvironmentController.step`` keeps it as the observation's
   ``success``; ``BlueTableWrapper`` drops it): **no flag**.
2. ``Shared/Actions/ConcreteActions/DecoyVsftpd.py``: the decoy listens on 21, the port it checks
   (``Flag.VSFTPD_LISTENS_ON_21``).
3. ``Shared/Scenarios/images/Internal_image.yaml``: ``smss.exe`` (445, 139, SYSTEM) gets ``Process
   Type: smb``, so EternalBlue works on Enterprise1/2 (``Flag.INTERNAL_SMSS_IS_SMB``).
4. ``Shared/Scenarios/images/linux_user_host_image1.yaml``: User3's mysql (root) listens on 3390,
   not 3389, so SQLInjection works there (``Flag.USER3_MYSQL_ON_3390``).
5. ``Shared/RedRewardCalculator.py::PwnRewardCalculator``: a host counts for confidentiality when a
   Red session runs as any of ``NetworkService, vagrant, root, SYSTEM, pi, www-data`` (on either
   OS) instead of root (Linux) / SYSTEM (Windows) (``Flag.REWARD_SERVICE_USERS``).
6. ``Agents/Wrappers/BlueTableWrapper.py::_interpret_connections``: a connection with remote port
   4444 means Exploit before the Scan rule is tried (``Flag.EXPLOIT_BEFORE_SCAN``).

Rule sets are named bundles of such flags. The environment holds the rule set as a traced id
(``EnvParams.rules``), so one compiled program can run several rule sets side by side (vmap over
params); the flags are looked up from ``RULE_FLAGS`` inside the dynamics.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np


class Flag(enum.IntEnum):
    """A behaviour a rule set can switch on that differs from today's CybORG (False = ``current``):
    older code (``leaderboard``) or CybORG++'s fixes (``debugged``)."""

    # 3ead7fd: Restore leaves the host's processes with ProcessVersion.UNKNOWN (HarakaRCE fails).
    RESTORE_LOSES_PROCESS_VERSION = 0
    # 9421c8e: a rescan adds to Red's remembered ports instead of replacing them.
    RESCAN_APPENDS_PORTS = 1
    # CybORG++ fix 2: DecoyVsftpd listens on 21 (not 80): no stacking, no clash with Apache, and it
    # catches no exploit (FTPDirectoryTraversal wants a femitter, HTTPRFI port 80).
    VSFTPD_LISTENS_ON_21 = 2
    # CybORG++ fix 3: Enterprise1/2's smss.exe is an smb process: EternalBlue works there (SYSTEM).
    INTERNAL_SMSS_IS_SMB = 3
    # CybORG++ fix 4: User3's mysql listens on 3390: SQLInjection (root) instead of BlueKeep.
    USER3_MYSQL_ON_3390 = 4
    # CybORG++ fix 5: service users (www-data, NetworkService, pi, vagrant) count like root/SYSTEM
    # for confidentiality; in Scenario2 every Red session runs as one of the listed users.
    REWARD_SERVICE_USERS = 5
    # CybORG++ fix 6: a 4444 connection makes the host's activity Exploit before the Scan rule.
    EXPLOIT_BEFORE_SCAN = 6


NUM_FLAGS = len(Flag)


@dataclass(frozen=True)
class RuleSet:
    """One named rule set."""

    name: str
    flags: frozenset[Flag]
    cyborg: str  # the CybORG code it reproduces
    description: str


RULE_SETS: tuple[RuleSet, ...] = (
    RuleSet(
        name="current",
        flags=frozenset(),
        cyborg="cage-challenge-2 @ 9421c8e (HEAD; = csle-cyborg 0.0.3)",
        description="today's CybORG 2.1: both post-leaderboard fixes (3ead7fd, 9421c8e)",
    ),
    RuleSet(
        name="leaderboard",
        flags=frozenset({Flag.RESTORE_LOSES_PROCESS_VERSION, Flag.RESCAN_APPENDS_PORTS}),
        cyborg="cage-challenge-2 @ 606813b (the 2022 final leaderboard)",
        description="the code the CAGE2 leaderboard was scored on: before 3ead7fd and 9421c8e",
    ),
    RuleSet(
        name="debugged",
        flags=frozenset(
            {
                Flag.VSFTPD_LISTENS_ON_21,
                Flag.INTERNAL_SMSS_IS_SMB,
                Flag.USER3_MYSQL_ON_3390,
                Flag.REWARD_SERVICE_USERS,
                Flag.EXPLOIT_BEFORE_SCAN,
            }
        ),
        cyborg="CybORG_plus_plus @ c343476, Debugged_CybORG (cage-challenge-2 9421c8e + 6 fixes)",
        description="CybORG++'s Debugged_CybORG: today's CybORG 2.1 with six bug fixes "
        "(five change Blue's game)",
    ),
)

RULE_NAMES: tuple[str, ...] = tuple(r.name for r in RULE_SETS)
DEFAULT_RULES = "current"
DEFAULT_RULES_ID = RULE_NAMES.index(DEFAULT_RULES)

# RULE_FLAGS[rules_id, flag]: the flag is on in that rule set.
RULE_FLAGS = np.zeros((len(RULE_SETS), NUM_FLAGS), dtype=bool)
for _i, _r in enumerate(RULE_SETS):
    for _f in _r.flags:
        RULE_FLAGS[_i, _f] = True

FLAG_SOURCES: dict[Flag, str] = {
    Flag.RESTORE_LOSES_PROCESS_VERSION: (
        "3ead7fd, CybORG/Shared/Enums.py::ProcessVersion.parse_string (Simulator/Host.py::restore "
        "rebuilds processes; ConcreteActions/HarakaRCE.py reads the version)"
    ),
    Flag.RESCAN_APPENDS_PORTS: (
        "9421c8e, Shared/Actions/AbstractActions/DiscoverNetworkServices.py, "
        "Simulator/Session.py::RedAbstractSession.clearports"
    ),
    Flag.VSFTPD_LISTENS_ON_21: (
        "CybORG++ c343476, Debugged_CybORG/CybORG/CybORG/Shared/Actions/ConcreteActions/"
        "DecoyVsftpd.py::VsftpdDecoyFactory.make_decoy (open_ports 21)"
    ),
    Flag.INTERNAL_SMSS_IS_SMB: (
        "CybORG++ c343476, Debugged_CybORG/CybORG/CybORG/Shared/Scenarios/images/"
        "Internal_image.yaml (smss.exe Process Type: smb; ConcreteActions/EternalBlue.py)"
    ),
    Flag.USER3_MYSQL_ON_3390: (
        "CybORG++ c343476, Debugged_CybORG/CybORG/CybORG/Shared/Scenarios/images/"
        "linux_user_host_image1.yaml (mysql local_port 3390; ConcreteActions/SQLInjection.py)"
    ),
    Flag.REWARD_SERVICE_USERS: (
        "CybORG++ c343476, Debugged_CybORG/CybORG/CybORG/Shared/RedRewardCalculator.py::"
        "PwnRewardCalculator.calculate_reward (usernames list)"
    ),
    Flag.EXPLOIT_BEFORE_SCAN: (
        "CybORG++ c343476, Debugged_CybORG/CybORG/CybORG/Agents/Wrappers/BlueTableWrapper.py::"
        "_interpret_connections (4444 rule first)"
    ),
}

# CybORG++ Debugged_CybORG's fixes (README order) -> the flag reproducing each; None: the fix
# does not change what a ChallengeWrapper agent observes or is rewarded (fix 1).
DEBUGGED_FIXES: dict[str, Flag | None] = {
    "remove_success": None,
    "vsftpd_port_21": Flag.VSFTPD_LISTENS_ON_21,
    "smss_smb": Flag.INTERNAL_SMSS_IS_SMB,
    "user3_mysql_3390": Flag.USER3_MYSQL_ON_3390,
    "reward_service_users": Flag.REWARD_SERVICE_USERS,
    "exploit_before_scan": Flag.EXPLOIT_BEFORE_SCAN,
}


def rules_id(rules: str | int) -> int:
    """The id of a rule set given by name (or id); ``ValueError`` listing the names if unknown."""
    if isinstance(rules, (int, np.integer)) and not isinstance(rules, bool):
        if 0 <= int(rules) < len(RULE_SETS):
            return int(rules)
        raise ValueError(f"unknown rules id {rules!r}; expected 0..{len(RULE_SETS) - 1}")
    key = str(rules).strip().lower()
    if key not in RULE_NAMES:
        raise ValueError(f"unknown rules {rules!r}; expected one of {list(RULE_NAMES)}")
    return RULE_NAMES.index(key)


def rules_name(rules: str | int | jax.Array) -> str:
    """The name of a rule set given by id (a concrete scalar, e.g. ``params.rules``) or name."""
    if isinstance(rules, str):
        return RULE_NAMES[rules_id(rules)]
    return RULE_NAMES[rules_id(int(np.asarray(rules)))]


def get_rule_set(rules: str | int) -> RuleSet:
    """The ``RuleSet`` for a name or id."""
    return RULE_SETS[rules_id(rules)]


def flag(rules: jax.Array | int, which: Flag) -> jax.Array:
    """() bool: whether flag ``which`` is on in rule set ``rules`` (a traced int32 id)."""
    return jnp.asarray(RULE_FLAGS)[rules, int(which)]


def describe() -> str:
    """The rule-set table as text (CLI help, docs)."""
    lines = []
    for r in RULE_SETS:
        flags = ", ".join(f.name for f in sorted(r.flags)) or "none"
        lines.append(f"{r.name}: {r.description} [{r.cyborg}]; flags: {flags}")
    return "\n".join(lines)
