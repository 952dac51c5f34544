"""Identifiers of CAGE2 Scenario2 entities: hosts, subnets, actions, exploits, decoys, ports.

Mirrors the orderings CybORG uses, which are load-bearing (they fix the observation layout and the
blue action indices):
- host order = the YAML ``Hosts:`` order, which is the order of ``State.hosts`` and therefore of
  ``BlueTableWrapper.blue_info`` rows (``CybORG/Shared/Scenarios/Scenario2.yaml``);
- subnet order = the YAML ``Subnets:`` order (``State._initialise_state``);
- blue action order = ``EnumActionWrapper.action_space_change`` over Blue's YAML action list;
- exploit order = the dict in ``ExploitRemoteService.DefaultExploitActionSelector``.
"""

from __future__ import annotations

from enum import IntEnum


class Host(IntEnum):
    """Host index; every per-host array in jaxcage is indexed in this order."""

    DEFENDER = 0
    ENTERPRISE0 = 1
    ENTERPRISE1 = 2
    ENTERPRISE2 = 3
    OP_HOST0 = 4
    OP_HOST1 = 5
    OP_HOST2 = 6
    OP_SERVER0 = 7
    USER0 = 8
    USER1 = 9
    USER2 = 10
    USER3 = 11
    USER4 = 12


NUM_HOSTS = 13
HOST_NAMES: tuple[str, ...] = (
    "Defender",
    "Enterprise0",
    "Enterprise1",
    "Enterprise2",
    "Op_Host0",
    "Op_Host1",
    "Op_Host2",
    "Op_Server0",
    "User0",
    "User1",
    "User2",
    "User3",
    "User4",
)


class Subnet(IntEnum):
    """Subnet index, in CybORG's ``scenario.subnets`` order (also Red's subnet dict order)."""

    ENTERPRISE = 0
    OPERATIONAL = 1
    USER = 2


NUM_SUBNETS = 3
SUBNET_NAMES: tuple[str, ...] = ("Enterprise", "Operational", "User")


class BlueActionType(IntEnum):
    """Kinds of blue action (``Scenario2.yaml`` Agents.Blue.actions)."""

    SLEEP = 0
    MONITOR = 1
    ANALYSE = 2
    REMOVE = 3
    DECOY = 4
    RESTORE = 5


class Decoy(IntEnum):
    """Decoy kinds, in Blue's YAML action order (``Shared/Actions/ConcreteActions/Decoy*.py``)."""

    APACHE = 0
    FEMITTER = 1
    HARAKA_SMPT = 2
    SMSS = 3
    SSHD = 4
    SVCHOST = 5
    TOMCAT = 6
    VSFTPD = 7


NUM_DECOYS = 8
DECOY_NAMES: tuple[str, ...] = (
    "DecoyApache",
    "DecoyFemitter",
    "DecoyHarakaSMPT",
    "DecoySmss",
    "DecoySSHD",
    "DecoySvchost",
    "DecoyTomcat",
    "DecoyVsftpd",
)

# Blue action index layout (EnumActionWrapper): Sleep, Monitor, then 13 per host-targeted class.
NUM_BLUE_ACTIONS = 145
ANALYSE_BASE = 2
REMOVE_BASE = 15
DECOY_BASE = 28
RESTORE_BASE = 132


def analyse(host: int) -> int:
    """Blue action id of Analyse(host)."""
    return ANALYSE_BASE + int(host)


def remove(host: int) -> int:
    """Blue action id of Remove(host)."""
    return REMOVE_BASE + int(host)


def restore(host: int) -> int:
    """Blue action id of Restore(host)."""
    return RESTORE_BASE + int(host)


def decoy(kind: int, host: int) -> int:
    """Blue action id of Decoy<kind>(host)."""
    return DECOY_BASE + NUM_HOSTS * int(kind) + int(host)


class RedActionType(IntEnum):
    """Red abstract actions used by B_line / Meander (``CybORG/Shared/Actions/AbstractActions``)."""

    SLEEP = 0
    DISCOVER_REMOTE_SYSTEMS = 1
    DISCOVER_NETWORK_SERVICES = 2
    EXPLOIT_REMOTE_SERVICE = 3
    PRIVILEGE_ESCALATE = 4
    IMPACT = 5


class RedAgent(IntEnum):
    """Scripted red agents; the id lives in ``EnvParams.red_agent`` (traced)."""

    B_LINE = 0
    MEANDER = 1
    SLEEP = 2


RED_AGENT_NAMES: tuple[str, ...] = ("b_line", "meander", "sleep")


class GreenAgent(IntEnum):
    """Green agents: the evaluation default (SleepAgent) and CybORG's ``GreenAgent``."""

    SLEEP = 0
    RANDOM = 1


GREEN_AGENT_NAMES: tuple[str, ...] = ("sleep", "random")


class Exploit(IntEnum):
    """Concrete exploits, in ``DefaultExploitActionSelector``'s dict order."""

    ETERNAL_BLUE = 0
    BLUE_KEEP = 1
    HTTP_RFI = 2
    HTTPS_RFI = 3
    SSH_BRUTE_FORCE = 4
    SQL_INJECTION = 5
    HARAKA_RCE = 6
    FTP_DIRECTORY_TRAVERSAL = 7


NUM_EXPLOITS = 8
EXPLOIT_NAMES: tuple[str, ...] = (
    "EternalBlue",
    "BlueKeep",
    "HTTPRFI",
    "HTTPSRFI",
    "SSHBruteForce",
    "SQLInjection",
    "HarakaRCE",
    "FTPDirectoryTraversal",
)


class Port(IntEnum):
    """Port classes used in event summaries and in Red's remembered-port memory.

    ``EPHEMERAL`` is the local port of a reverse shell (``randrange(49152, 60000)``): it never
    equals a service port and is distinct from every other port in the same step.
    """

    P21 = 0
    P22 = 1
    P25 = 2
    P53 = 3
    P68 = 4
    P80 = 5
    P135 = 6
    P139 = 7
    P443 = 8
    P445 = 9
    P3389 = 10
    P3390 = 11
    EPHEMERAL = 12


NUM_PORTS = 13
PORT_NUMBERS: tuple[int, ...] = (21, 22, 25, 53, 68, 80, 135, 139, 443, 445, 3389, 3390, -1)


class Activity(IntEnum):
    """BlueTableWrapper 'Activity' column."""

    NONE = 0
    SCAN = 1
    EXPLOIT = 2


class Compromised(IntEnum):
    """BlueTableWrapper 'Compromised' column."""

    NO = 0
    UNKNOWN = 1
    USER = 2
    PRIVILEGED = 3


OBS_SIZE = 4 * NUM_HOSTS


def blue_action_name(action: int) -> str:
    """Human-readable CybORG name of a blue action id, e.g. ``'Restore Op_Server0'``."""
    a = int(action)
    if not 0 <= a < NUM_BLUE_ACTIONS:
        raise ValueError(f"blue action id must be in 0..{NUM_BLUE_ACTIONS - 1}, got {action!r}")
    if a == 0:
        return "Sleep"
    if a == 1:
        return "Monitor"
    if a < REMOVE_BASE:
        return f"Analyse {HOST_NAMES[a - ANALYSE_BASE]}"
    if a < DECOY_BASE:
        return f"Remove {HOST_NAMES[a - REMOVE_BASE]}"
    if a < RESTORE_BASE:
        kind, host = divmod(a - DECOY_BASE, NUM_HOSTS)
        return f"{DECOY_NAMES[kind]} {HOST_NAMES[host]}"
    return f"Restore {HOST_NAMES[a - RESTORE_BASE]}"


BLUE_ACTION_NAMES: tuple[str, ...] = tuple(blue_action_name(a) for a in range(NUM_BLUE_ACTIONS))
