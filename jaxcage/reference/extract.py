"""Read jaxcage's state quantities, and each step's random outcomes, out of a running CybORG.

The lockstep test needs two things from CybORG after every step (spec §10):

* the *state*: every quantity of ``jaxcage.state.EnvState``, computed from CybORG's own objects
  (``Simulator/State.py`` hosts and sessions, the Red ``RedAbstractSession`` memory, the Red
  ``ActionSpace`` known flags, ``BlueTableWrapper.blue_info``, and the B_line / Meander agents);
* the *outcomes* of the step's random draws (``Shared/Actions/...``, ``Agents/SimpleAgents/...``),
  so that jaxcage's deterministic ``transition`` can be fed the same outcomes via
  ``jaxcage.noise.forced_noise``.

Everything here only reads CybORG (duck-typed, so both the csle and the official distribution
work); nothing is patched. The tables below are transcribed from CybORG's code, not taken from
``jaxcage.topology``, so that a wrong table in jaxcage cannot hide behind a shared one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from jaxcage.constants import (
    EXPLOIT_NAMES,
    HOST_NAMES,
    NUM_DECOYS,
    NUM_EXPLOITS,
    NUM_HOSTS,
    NUM_SUBNETS,
    SUBNET_NAMES,
    Compromised,
    Decoy,
    Host,
    RedActionType,
)
from jaxcage.reference.cyborg_env import CyborgEnv

# Session usernames that count as privileged: BlueRewardCalculator (confidentiality), Impact and
# PrivilegeEscalate test ``username in ('root', 'SYSTEM')``; StopProcess spares these process users.
PRIVILEGED_USERS = frozenset({"root", "SYSTEM"})

# DefaultExploitActionSelector (AbstractActions/ExploitRemoteService.py), in dict order = Exploit
# order: (remembered port that enables it, selection weight). SQLInjection also needs 80 or 443.
EXPLOIT_PORT_NUMBERS: tuple[int, ...] = (139, 3389, 80, 443, 22, 3390, 25, 21)
EXPLOIT_WEIGHTS: tuple[float, ...] = (2.0, 1.0, 3.0, 4.0, 0.1, 5.0, 6.0, 7.0)
_SQL_INJECTION = EXPLOIT_NAMES.index("SQLInjection")

# Process names of the decoys (ConcreteActions/Decoy*.py ``make_decoy``). Real processes can share
# a name (apache2), so only processes with a non-NONE ``decoy_type`` are counted.
DECOY_PROCESS_NAMES: dict[str, int] = {
    "apache2": Decoy.APACHE,
    "femitter": Decoy.FEMITTER,
    "haraka": Decoy.HARAKA_SMPT,
    "Smss.exe": Decoy.SMSS,
    "Sshd.exe": Decoy.SSHD,
    "Svchost.exe": Decoy.SVCHOST,
    "Tomcat.exe": Decoy.TOMCAT,
    "vsftpd": Decoy.VSFTPD,
}

_COMPROMISED = {
    "No": Compromised.NO,
    "Unknown": Compromised.UNKNOWN,
    "User": Compromised.USER,
    "Privileged": Compromised.PRIVILEGED,
}

_RED_ACTION_TYPES = {
    "Sleep": RedActionType.SLEEP,
    "DiscoverRemoteSystems": RedActionType.DISCOVER_REMOTE_SYSTEMS,
    "DiscoverNetworkServices": RedActionType.DISCOVER_NETWORK_SERVICES,
    "ExploitRemoteService": RedActionType.EXPLOIT_REMOTE_SERVICE,
    "PrivilegeEscalate": RedActionType.PRIVILEGE_ESCALATE,
    "Impact": RedActionType.IMPACT,
}

_HOST_INDEX = {name: i for i, name in enumerate(HOST_NAMES)}

# Fields of EnvState that only mean something for one red agent (the others keep their reset
# values in jaxcage and have no CybORG counterpart).
BLINE_FIELDS: tuple[str, ...] = ("bline_stage", "bline_user", "bline_stage12_built")
MEANDER_FIELDS: tuple[str, ...] = (
    "meander_scanned_subnets",
    "meander_scanned_ips",
    "meander_exploited_ips",
    "meander_escalated",
    "meander_host_ip_map",
    "meander_last_ip",
    "meander_last_host",
    "red_stuck",
)


class ExtractionError(RuntimeError):
    """CybORG is in a state the extraction does not understand (e.g. an unexpected action)."""


def is_true(value: Any) -> bool:
    """CybORG's ``TrinaryEnum.TRUE`` (or a plain True)."""
    return value is True or getattr(value, "name", None) == "TRUE"


def exploit_options(ports: list[int] | tuple[int, ...]) -> list[int]:
    """Exploit ids ``DefaultExploitActionSelector`` considers for a remembered port list."""
    port_set = set(ports)
    options = []
    for e, port in enumerate(EXPLOIT_PORT_NUMBERS):
        ok = port in port_set
        if e == _SQL_INJECTION:
            ok = ok and (80 in port_set or 443 in port_set)
        if ok:
            options.append(e)
    return options


def top_exploit(options: list[int]) -> int:
    """The max-weight option (weights are distinct, so it is unique)."""
    return max(options, key=lambda e: EXPLOIT_WEIGHTS[e])


@dataclass(frozen=True)
class EpisodeIndex:
    """Name lookups for one episode (CybORG draws new IPs and subnet blocks on every reset)."""

    ip_to_host: dict[Any, int]  # IPv4Address -> host index
    host_to_ip: tuple[Any, ...]  # host index -> IPv4Address
    cidr_to_subnet: dict[Any, int]  # IPv4Network -> subnet index
    subnet_to_cidr: tuple[Any, ...]


def episode_index(env: CyborgEnv) -> EpisodeIndex:
    """Build the IP/CIDR lookups from ``hostname_ip_map`` / ``subnet_cidr_map``."""
    ctrl = env.controller
    ip_map = ctrl.hostname_ip_map
    cidr_map = ctrl.subnet_cidr_map
    host_to_ip = tuple(ip_map[name] for name in HOST_NAMES)
    subnet_to_cidr = tuple(cidr_map[name] for name in SUBNET_NAMES)
    return EpisodeIndex(
        ip_to_host={ip: i for i, ip in enumerate(host_to_ip)},
        host_to_ip=host_to_ip,
        cidr_to_subnet={cidr: s for s, cidr in enumerate(subnet_to_cidr)},
        subnet_to_cidr=subnet_to_cidr,
    )


@dataclass(frozen=True)
class RedSession:
    """One Red session as the dynamics see it."""

    ident: int
    host: int
    username: str
    pid: int | None
    session_type: str  # SessionType name, e.g. RED_REVERSE_SHELL, SSH, RED_ABSTRACT_SESSION
    privileged: bool
    removable: bool  # Remove(host) would kill it (Abstract Remove -> StopProcess)


def _sus_pids(env: CyborgEnv) -> dict[str, list[int]]:
    # The VelociraptorServer is Blue's session 0 (Scenario2.yaml starting_sessions).
    return env.state.sessions["Blue"][0].sus_pids


def red_sessions(env: CyborgEnv) -> dict[int, RedSession]:
    """All Red sessions keyed by ident (idents are never reused: ``State.sessions_count``)."""
    state = env.state
    sus = _sus_pids(env)
    out: dict[int, RedSession] = {}
    for ident, sess in state.sessions["Red"].items():
        host = _HOST_INDEX[sess.host]
        privileged = sess.username in PRIVILEGED_USERS
        removable = False
        if not privileged and sess.pid in sus.get(sess.host, ()):
            # Remove: for each sus pid, StopProcess kills the first process with that pid unless
            # its user is root/SYSTEM, and with it the session owning that pid.
            proc = state.hosts[sess.host].get_process(sess.pid)
            removable = proc is not None and proc.user not in PRIVILEGED_USERS
        out[int(ident)] = RedSession(
            ident=int(ident),
            host=host,
            username=str(sess.username),
            pid=sess.pid,
            session_type=getattr(sess.session_type, "name", str(sess.session_type)),
            privileged=privileged,
            removable=removable,
        )
    return out


def _red_memory(env: CyborgEnv) -> Any:
    return env.state.sessions["Red"][0]


def _red_agent(env: CyborgEnv) -> Any:
    return env.controller.agent_interfaces["Red"].agent


@dataclass(frozen=True)
class PreStep:
    """What must be remembered from before a step to read its outcomes afterwards."""

    index: EpisodeIndex
    sessions: dict[int, RedSession]
    ports: dict[int, tuple[int, ...]]  # host -> Red session 0's remembered ports (copy)
    bline_built: frozenset[int]  # B_line.action_history keys


def snapshot(env: CyborgEnv, index: EpisodeIndex | None = None) -> PreStep:
    """Record the pre-step facts ``read_outcome`` needs."""
    index = index or episode_index(env)
    memory = _red_memory(env)
    ports = {
        index.ip_to_host[ip]: tuple(int(p) for p in plist)
        for ip, plist in memory.ports.items()
        if ip in index.ip_to_host
    }
    agent = _red_agent(env)
    built = frozenset(getattr(agent, "action_history", {}).keys())
    return PreStep(index=index, sessions=red_sessions(env), ports=ports, bline_built=built)


@dataclass(frozen=True)
class StepOutcome:
    """What happened in one CybORG step, including the outcome of every consequential draw."""

    red_action_type: int  # constants.RedActionType
    red_target: int  # host index (subnet index for DiscoverRemoteSystems), -1 for Sleep
    red_success: bool
    red_action: str  # str(action), for messages
    green_scan: bool
    green_host: int | None
    red_draw_target: int | None  # host Red drew this step (B_line stage 1; Meander DNS/PE/Exploit)
    exploit: int  # Exploit id ExploitRemoteService ran, -1 if it selected none
    exploit_drawn: bool  # >= 2 options, so random.choices / random.random were consumed
    exploit_top: bool
    exploit_other: int | None
    detected: bool | None  # a reverse shell was created: did its pid reach sus_pids?
    privesc_removable: bool | None  # PrivEsc had to choose: was the upgraded session removable?

    def noise_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``jaxcage.noise.forced_noise`` that force these outcomes.

        Draws CybORG did not make are left at their defaults, so jaxcage consuming a draw CybORG
        did not make shows up as a mismatch instead of being silently forced right.
        """
        kwargs: dict[str, Any] = {"green_scan": self.green_scan, "green_host": self.green_host}
        if self.red_draw_target is not None:
            kwargs["red_target"] = self.red_draw_target
        if self.exploit_drawn:
            kwargs["exploit_top"] = self.exploit_top
            kwargs["exploit_other"] = self.exploit_other
        if self.detected is not None:
            kwargs["detected"] = self.detected
        if self.privesc_removable is not None:
            kwargs["privesc_removable"] = self.privesc_removable
        return kwargs


def _action_type(action: Any) -> int:
    name = type(action).__name__
    if name not in _RED_ACTION_TYPES:
        raise ExtractionError(f"unexpected Red action {name} ({action})")
    return int(_RED_ACTION_TYPES[name])


def _action_target(action: Any, index: EpisodeIndex) -> int:
    name = type(action).__name__
    if name == "DiscoverRemoteSystems":
        return index.cidr_to_subnet[action.subnet]
    if name in ("DiscoverNetworkServices", "ExploitRemoteService"):
        return index.ip_to_host[action.ip_address]
    if name in ("PrivilegeEscalate", "Impact"):
        return _HOST_INDEX[action.hostname]
    return -1


def read_outcome(env: CyborgEnv, pre: PreStep) -> StepOutcome:
    """Read the step's actions and draw outcomes (call right after ``env.step``).

    Raises:
        ExtractionError: an outcome CybORG's code cannot produce was observed (e.g. an exploit
            outside the selector's options, which would mean a stale ``sub_action`` was read).
    """
    ctrl = env.controller
    index = pre.index

    green = ctrl.action.get("Green")
    green_scan = type(green).__name__ == "GreenPortScan"
    green_host = _HOST_INDEX[green.hostname] if green_scan else None

    action = ctrl.action["Red"]
    kind = _action_type(action)
    target = _action_target(action, index)
    success = is_true(ctrl.observation["Red"].data.get("success"))

    red_draw_target: int | None = None
    agent = _red_agent(env)
    agent_name = type(agent).__name__
    if agent_name == "B_lineAgent":
        # random.choice over User1..4 happens exactly when stage 1 is first built.
        history = agent.action_history
        if 1 in history and 1 not in pre.bline_built:
            red_draw_target = index.ip_to_host[history[1].ip_address]
    elif agent_name == "RedMeanderAgent" and kind in (
        RedActionType.DISCOVER_NETWORK_SERVICES,
        RedActionType.PRIVILEGE_ESCALATE,
        RedActionType.EXPLOIT_REMOTE_SERVICE,
    ):
        # shuffle + first eligible = a uniform draw among the eligible targets.
        red_draw_target = target

    exploit, drawn, top, other = -1, False, True, None
    detected: bool | None = None
    if kind == RedActionType.EXPLOIT_REMOTE_SERVICE:
        remembered = pre.ports.get(target)
        # ExploitRemoteService.sim_execute returns before selecting when the IP has no port memory,
        # leaving ``sub_action`` from an earlier run of the same (reused) action object.
        if remembered is not None:
            options = exploit_options(remembered)
            sub = getattr(action, "sub_action", None)
            if sub is not None:
                exploit = EXPLOIT_NAMES.index(type(sub).__name__)
            if (exploit == -1) != (len(options) == 0) or (exploit != -1 and exploit not in options):
                raise ExtractionError(
                    f"exploit {exploit} is not a selector option {options} for ports {remembered}"
                )
            if len(options) >= 2:
                drawn = True
                top = exploit == top_exploit(options)
                other = None if top else exploit
        post = red_sessions(env)
        new = [s for i, s in post.items() if i not in pre.sessions]
        shells = [s for s in new if s.session_type == "RED_REVERSE_SHELL"]
        if len(new) > 1:
            raise ExtractionError(f"one exploit created {len(new)} sessions")
        if shells:
            sus = _sus_pids(env).get(HOST_NAMES[shells[0].host], ())
            detected = shells[0].pid in sus

    privesc_removable: bool | None = None
    if kind == RedActionType.PRIVILEGE_ESCALATE and success:
        post = red_sessions(env)
        upgraded = [
            s
            for i, s in pre.sessions.items()
            if s.host == target and not s.privileged and i in post and post[i].privileged
        ]
        if len(upgraded) > 1:
            raise ExtractionError(f"PrivilegeEscalate upgraded {len(upgraded)} sessions")
        if upgraded:
            privesc_removable = upgraded[0].removable

    return StepOutcome(
        red_action_type=kind,
        red_target=target,
        red_success=success,
        red_action=str(action),
        green_scan=green_scan,
        green_host=green_host,
        red_draw_target=red_draw_target,
        exploit=exploit,
        exploit_drawn=drawn,
        exploit_top=top,
        exploit_other=other,
        detected=detected,
        privesc_removable=privesc_removable,
    )


def _name(value: Any) -> str | None:
    """An enum member's name (``None`` for ``None``; CybORG after 3ead7fd may hold a raw str)."""
    return getattr(value, "name", None)


def _flag(value: Any) -> np.ndarray:
    return np.asarray(bool(value))


def _int(value: Any) -> np.ndarray:
    return np.asarray(int(value), dtype=np.int32)


def extract_state(env: CyborgEnv, index: EpisodeIndex | None = None) -> dict[str, np.ndarray]:
    """Every ``jaxcage.state.EnvState`` quantity, read from CybORG's objects.

    Returns numpy arrays keyed by EnvState field name. Fields of the red agents not in play keep
    their reset values (see ``BLINE_FIELDS`` / ``MEANDER_FIELDS``).
    """
    index = index or episode_index(env)
    state = env.state
    ctrl = env.controller

    red_priv = np.zeros(NUM_HOSTS, np.int32)
    red_removable = np.zeros(NUM_HOSTS, np.int32)
    red_hidden = np.zeros(NUM_HOSTS, np.int32)
    for sess in red_sessions(env).values():
        if sess.privileged:
            red_priv[sess.host] += 1
        elif sess.removable:
            red_removable[sess.host] += 1
        else:
            red_hidden[sess.host] += 1

    malware = np.zeros(NUM_HOSTS, bool)
    decoys = np.zeros((NUM_HOSTS, NUM_DECOYS), np.int32)
    haraka_unknown = np.zeros(NUM_HOSTS, bool)
    for h, name in enumerate(HOST_NAMES):
        host = state.hosts[name]
        # Analyse -> DensityScout lists every file; BlueTableWrapper flags density >= 0.9.
        malware[h] = any(float(f.density) >= 0.9 for f in (host.files or ()))
        for proc in host.processes:
            if getattr(proc.decoy_type, "value", 0):
                decoys[h, DECOY_PROCESS_NAMES[proc.name]] += 1
            elif _name(proc.process_type) == "SMTP" and _name(proc.version) == "UNKNOWN":
                # HarakaRCE.test_exploit_works: version.value < HARAKA_2_8_9.value fails.
                haraka_unknown[h] = True

    op = state.hosts[HOST_NAMES[Host.OP_SERVER0]]
    service = op.services["OTService"]

    table = env.table_wrapper.blue_info
    compromised = np.array([_COMPROMISED[table[n][-1]] for n in HOST_NAMES], np.int32)

    memory = _red_memory(env)
    mem_valid = np.zeros(NUM_HOSTS, bool)
    mem_ports = np.zeros((NUM_HOSTS, NUM_EXPLOITS), bool)
    for h, ip in enumerate(index.host_to_ip):
        if ip in memory.ports:
            mem_valid[h] = True
            remembered = set(memory.ports[ip])
            mem_ports[h] = [p in remembered for p in EXPLOIT_PORT_NUMBERS]

    space = ctrl.agent_interfaces["Red"].action_space
    known_ip = np.array([bool(space.ip_address.get(ip, False)) for ip in index.host_to_ip])
    known_host = np.array([bool(space.hostname.get(n, False)) for n in HOST_NAMES])
    known_subnet = np.array([bool(space.subnet.get(c, False)) for c in index.subnet_to_cidr])

    red_obs = ctrl.observation["Red"].data
    last = ctrl.action.get("Red") if env.t > 0 else None  # not cleared by reset (quirk 19)
    last_dns_ports = type(last).__name__ == "DiscoverNetworkServices" and any(
        k != "success" for k in red_obs
    )

    out: dict[str, np.ndarray] = {
        "red_priv": red_priv,
        "red_user_removable": red_removable,
        "red_user_hidden": red_hidden,
        "malware_file": malware,
        "decoys": decoys,
        "ot_proc_present": _flag(any(p.name == "OTService" for p in op.processes)),
        "ot_active": _flag(bool(service["active"])),
        "ot_pid_valid": _flag(service["process"] is not None),
        "haraka_unknown": haraka_unknown,
        "compromised": compromised,
        "red_mem_valid": mem_valid,
        "red_mem_ports": mem_ports,
        "ot_service_known": _flag(memory.ot_service is not None),
        "known_ip": known_ip,
        "known_host": known_host,
        "known_subnet": known_subnet,
        "red_last_success": _flag(is_true(red_obs.get("success"))),
        "red_last_dns_ports": _flag(last_dns_ports),
        "bline_stage": _int(0),
        "bline_user": _int(-1),
        "bline_stage12_built": _flag(False),
        "meander_scanned_subnets": np.zeros(NUM_SUBNETS, bool),
        "meander_scanned_ips": np.zeros(NUM_HOSTS, bool),
        "meander_exploited_ips": np.zeros(NUM_HOSTS, bool),
        "meander_escalated": np.zeros(NUM_HOSTS, bool),
        "meander_host_ip_map": np.zeros(NUM_HOSTS, bool),
        "meander_last_ip": _int(-1),
        "meander_last_host": _int(-1),
        "red_stuck": _flag(False),
        "time": _int(env.t),
    }

    agent = _red_agent(env)
    agent_name = type(agent).__name__
    if agent_name == "B_lineAgent":
        history = agent.action_history
        out["bline_stage"] = _int(agent.action)
        if 1 in history:
            out["bline_user"] = _int(index.ip_to_host[history[1].ip_address])
        out["bline_stage12_built"] = _flag(12 in history)
    elif agent_name == "RedMeanderAgent":
        for cidr in agent.scanned_subnets:
            out["meander_scanned_subnets"][index.cidr_to_subnet[cidr]] = True
        for key, ips in (
            ("meander_scanned_ips", agent.scanned_ips),
            ("meander_exploited_ips", agent.exploited_ips),
        ):
            for ip in ips:
                out[key][index.ip_to_host[ip]] = True
        for name in agent.escalated_hosts:
            out["meander_escalated"][_HOST_INDEX[name]] = True
        for name, ip in agent.host_ip_map.items():
            # jaxcage keeps a flag per hostname, which assumes the map only ever pairs a host with
            # its own IP (the exploit observation's first System info entry is the target).
            if ip != index.host_to_ip[_HOST_INDEX[name]]:
                raise ExtractionError(f"Meander host_ip_map pairs {name} with a foreign IP {ip}")
            out["meander_host_ip_map"][_HOST_INDEX[name]] = True
        if agent.last_ip is not None:
            out["meander_last_ip"] = _int(index.ip_to_host[agent.last_ip])
        if agent.last_host is not None:
            out["meander_last_host"] = _int(_HOST_INDEX[agent.last_host])
    return out
