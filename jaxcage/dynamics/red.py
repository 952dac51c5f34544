"""Red's abstract actions executed on the true state.

Mirrors ``CybORG/Shared/Actions/AbstractActions/{DiscoverRemoteSystems,DiscoverNetworkServices,
ExploitRemoteService,PrivilegeEscalate,Impact}.py`` and the concrete actions they call
(``ConcreteActions/{Pingsweep,Portscan,ExploitAction,SSHBruteForce,EscalateAction,StopService}.py``).
Red acts last in a step, on the state Blue and Green left. Every action is run from Red's session 0
on User0, so the source subnet is always User.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from jaxcage.constants import (
    NUM_EXPLOITS,
    NUM_HOSTS,
    NUM_SUBNETS,
    Exploit,
    Host,
    Port,
    RedActionType,
    Subnet,
)
from jaxcage.dynamics.events import Events, add_scan, listening_connections
from jaxcage.noise import StepNoise, masked_argmax
from jaxcage.rules import Flag, flag
from jaxcage.state import EnvParams, EnvState
from jaxcage.topology import (
    DECOY_CATCHES,
    DECOY_CATCHES_VSFTPD_21,
    EXPLOIT_PORT,
    EXPLOIT_RANK,
    HAS_BRUTEFORCE_USER,
    HOST_SUBNET,
    IS_ENTERPRISE,
    IS_OPERATIONAL,
    PRIVESC_REVEALS_IP,
    REAL_MATCH,
    REAL_MATCH_SMSS_SMB,
    REAL_MATCH_USER3_3390,
    SHELL_PRIVILEGED,
    SUBNET_HOSTS,
)

# SSHBruteForce tries a 10-word list, one event each (ConcreteActions/SSHBruteForce.py).
SSH_WORDLIST_EVENTS = 10


class RedOutcome(struct.PyTreeNode):
    """Result of Red's action, as far as later logic needs it."""

    success: jax.Array  # () bool: Red's observation 'success' == TRUE
    dns_ports: jax.Array  # () bool: a DiscoverNetworkServices that returned ports (host entries)
    exploit: jax.Array  # () int32: exploit ExploitRemoteService ran, -1 if it chose none


def red_sessions(state: EnvState) -> jax.Array:
    """(13,) int32: number of Red sessions on each host."""
    return state.red_priv + state.red_user_removable + state.red_user_hidden


def operational_reachable(state: EnvState) -> jax.Array:
    """Red can reach the Operational subnet iff it holds a session on an Enterprise host.

    The Operational NACL for User is the string "None"; ``ConcreteAction.check_routable`` then
    grants all ports only if ``check_for_enterprise_sessions`` finds a Red session on a host whose
    name contains "Enterprise" (quirk 13).
    """
    return jnp.any((red_sessions(state) > 0) & jnp.asarray(IS_ENTERPRISE))


def real_match(rules: jax.Array) -> jax.Array:
    """(13, 8) bool: ``topology.REAL_MATCH`` under rule set ``rules`` (CybORG++'s image fixes make
    EternalBlue work on Enterprise1/2 and SQLInjection on User3)."""
    return (
        jnp.asarray(REAL_MATCH)
        | (flag(rules, Flag.INTERNAL_SMSS_IS_SMB) & jnp.asarray(REAL_MATCH_SMSS_SMB))
        | (flag(rules, Flag.USER3_MYSQL_ON_3390) & jnp.asarray(REAL_MATCH_USER3_3390))
    )


def decoy_catches(rules: jax.Array) -> jax.Array:
    """(8 decoys, 8 exploits) bool: ``topology.DECOY_CATCHES`` under rule set ``rules`` (a
    DecoyVsftpd on 21 catches nothing)."""
    return jnp.where(
        flag(rules, Flag.VSFTPD_LISTENS_ON_21),
        jnp.asarray(DECOY_CATCHES_VSFTPD_21),
        jnp.asarray(DECOY_CATCHES),
    )


def applicable_exploits(state: EnvState, host: jax.Array) -> jax.Array:
    """(8,) bool: exploits ``DefaultExploitActionSelector`` offers from the remembered ports."""
    ports = state.red_mem_ports[host]
    web = ports[Exploit.HTTP_RFI] | ports[Exploit.HTTPS_RFI]  # 80 or 443 remembered
    return ports & ((jnp.arange(NUM_EXPLOITS) != Exploit.SQL_INJECTION) | web)


def choose_exploit(
    state: EnvState, host: jax.Array, noise: StepNoise, params: EnvParams
) -> tuple[jax.Array, jax.Array]:
    """Exploit selection: ``(has_choice, exploit)``.

    One applicable exploit is taken as is; with several, the top-weighted one is taken with
    probability 0.75, else one of the others uniformly (``random.choices`` of the non-top ones).
    """
    options = applicable_exploits(state, host)
    num_options = jnp.sum(options)
    top = jnp.argmax(jnp.where(options, jnp.asarray(EXPLOIT_RANK), -1)).astype(jnp.int32)
    others = options & (jnp.arange(NUM_EXPLOITS) != top)
    other = masked_argmax(noise.exploit_other_key, others)
    take_top = (num_options == 1) | (noise.exploit_top_u < params.exploit_top_prob)
    return (num_options > 0) & state.red_mem_valid[host], jnp.where(take_top, top, other)


def _discover_remote_systems(state: EnvState, subnet: jax.Array, active: jax.Array):
    """Pingsweep: lists the subnet's IPs if it is routable from User (no events, no RNG)."""
    success = (subnet != Subnet.OPERATIONAL) | operational_reachable(state)
    revealed = active & success & jnp.asarray(SUBNET_HOSTS)[jnp.clip(subnet, 0, NUM_SUBNETS - 1)]
    return state.replace(known_ip=state.known_ip | revealed), success


def _discover_network_services(
    state: EnvState, events: Events, target_mask: jax.Array, host, params: EnvParams
):
    """Portscan: always 'succeeds'; if routable, one event per listening connection and Red's port
    memory for the IP is *replaced* by the scanned ports (the 2022-08-19 fix in
    DiscoverNetworkServices.py), or, under rules with ``Flag.RESCAN_APPENDS_PORTS`` (606813b),
    the scanned ports are added to those remembered. Unroutable Op hosts return no ports and leave
    memory untouched."""
    routable = ~jnp.asarray(IS_OPERATIONAL)[host] | operational_reachable(state)
    scanned = target_mask & routable
    listen = listening_connections(state, params.rules)[host]  # (13 ports,)
    remembered = listen[jnp.asarray(EXPLOIT_PORT)] > 0  # (8,)
    keep_old = flag(params.rules, Flag.RESCAN_APPENDS_PORTS)
    new_ports = remembered[None, :] | (keep_old & state.red_mem_ports)
    state = state.replace(
        red_mem_valid=state.red_mem_valid | scanned,
        red_mem_ports=jnp.where(scanned[:, None], new_ports, state.red_mem_ports),
    )
    return state, add_scan(events, state, scanned, params.rules), routable


def _exploit_remote_service(
    state: EnvState,
    events: Events,
    target_mask: jax.Array,
    host: jax.Array,
    noise: StepNoise,
    params: EnvParams,
):
    """ExploitRemoteService: pick an exploit from memory, then run it against the live processes."""
    has_choice, exploit = choose_exploit(state, host, noise, params)
    routable = ~jnp.asarray(IS_OPERATIONAL)[host] | operational_reachable(state)
    # The first matching process is searched in process order: original processes come before any
    # decoy (decoys are appended), so a real vulnerable process always wins over a decoy.
    real = real_match(params.rules)[host, exploit]
    decoy_hit = ~real & jnp.any((state.decoys[host] > 0) & decoy_catches(params.rules)[:, exploit])
    matched = has_choice & routable & (real | decoy_hit)
    is_ssh = exploit == Exploit.SSH_BRUTE_FORCE
    # HarakaRCE.test_exploit_works fails on a real Haraka whose version became UNKNOWN (606813b
    # after a Restore): the port-25 event stays, no shell, and no decoy event (it is no decoy).
    works = real & ~((exploit == Exploit.HARAKA_RCE) & state.haraka_unknown[host])
    port = jnp.asarray(EXPLOIT_PORT)[exploit]

    # SSHBruteForce: 10 events on 22 whenever an SSH process answers (even a decoy, even on
    # Defender where no user is bruteforceable), one more on success; never a PID, so the new
    # session is invisible to Remove (quirk 8) and no file is written.
    ssh_success = matched & is_ssh & real & jnp.asarray(HAS_BRUTEFORCE_USER)[host]
    ssh_events = jnp.where(matched & is_ssh, SSH_WORDLIST_EVENTS + ssh_success.astype(jnp.int32), 0)
    # Reverse-shell exploits: event (a) on the port; a decoy adds event (b) and fails; a real
    # process yields a shell run by the vulnerable process's user, with a cmd.* file, and with
    # probability 0.95 a PID event (c) with remote port 4444 (ExploitAction.detection_rate).
    shell_attempt = matched & ~is_ssh
    shell_success = shell_attempt & works
    detected = noise.detect_u < params.detection_prob
    shell_events = shell_attempt.astype(jnp.int32) + (shell_attempt & ~real).astype(jnp.int32)
    privileged = jnp.asarray(SHELL_PRIVILEGED)[host, exploit]

    port_onehot = jnp.arange(events.port_counts.shape[1]) == port
    eph_onehot = jnp.arange(events.port_counts.shape[1]) == Port.EPHEMERAL
    shell_seen = shell_success & detected
    per_port = (ssh_events + shell_events) * port_onehot.astype(jnp.int32) + shell_seen.astype(
        jnp.int32
    ) * eph_onehot.astype(jnp.int32)
    events = events.replace(
        port_counts=events.port_counts + jnp.where(target_mask[:, None], per_port[None, :], 0),
        shell_4444=events.shell_4444 | (target_mask & shell_seen),
    )
    new_priv = target_mask & shell_success & privileged
    new_removable = target_mask & shell_success & ~privileged & detected
    new_hidden = target_mask & ((shell_success & ~privileged & ~detected) | ssh_success)
    success = ssh_success | shell_success
    state = state.replace(
        red_priv=state.red_priv + new_priv.astype(jnp.int32),
        red_user_removable=state.red_user_removable + new_removable.astype(jnp.int32),
        red_user_hidden=state.red_user_hidden + new_hidden.astype(jnp.int32),
        malware_file=state.malware_file | (target_mask & shell_success),
        # The success observation carries the host's System info: Red now knows its hostname.
        known_host=state.known_host | (target_mask & success),
    )
    return state, events, success, jnp.where(has_choice, exploit, -1).astype(jnp.int32)


def _privilege_escalate(state: EnvState, target_mask: jax.Array, host, noise: StepNoise):
    """PrivilegeEscalate: succeeds iff Red has a session on the host.

    With a root/SYSTEM session already there nothing changes; otherwise one session, chosen
    uniformly, is upgraded (JuicyPotato / V4L2KernelExploit always work here) and an escalate.*
    file is written. Then ExploreHost reveals the host's 'info' (Scenario2.yaml): its own
    interfaces, possibly another host's IP, and for Op_Server0 the OTService.
    """
    removable = state.red_user_removable[host]
    hidden = state.red_user_hidden[host]
    success = red_sessions(state)[host] > 0
    upgrade = success & (state.red_priv[host] == 0)
    # random.choice(sessions): the chosen session is a removable one with probability
    # removable / (removable + hidden).
    picks_removable = noise.privesc_u * (removable + hidden).astype(jnp.float32) < removable
    up_removable = target_mask & upgrade & picks_removable
    up_hidden = target_mask & upgrade & ~picks_removable
    explored = target_mask & success
    explored_any = jnp.any(explored)
    state = state.replace(
        red_priv=state.red_priv + (target_mask & upgrade).astype(jnp.int32),
        red_user_removable=state.red_user_removable - up_removable.astype(jnp.int32),
        red_user_hidden=state.red_user_hidden - up_hidden.astype(jnp.int32),
        malware_file=state.malware_file | (target_mask & upgrade),
        known_ip=state.known_ip | jnp.any(explored[:, None] & jnp.asarray(PRIVESC_REVEALS_IP), 0),
        known_subnet=state.known_subnet
        | ((jnp.arange(NUM_SUBNETS) == jnp.asarray(HOST_SUBNET)[host]) & explored_any),
        ot_service_known=state.ot_service_known | (explored_any & (host == Host.OP_SERVER0)),
    )
    return state, success


def _impact(state: EnvState, host, active: jax.Array):
    """Impact: stops OTService. Succeeds iff Red has a session on the host, knows of the service
    and the host runs it (only Op_Server0), even when nothing is left to stop (quirk 2). The
    process is removed only while the service entry still points at it (see quirk 1)."""
    success = (red_sessions(state)[host] > 0) & state.ot_service_known & (host == Host.OP_SERVER0)
    stops = active & success & state.ot_active
    state = state.replace(
        ot_active=state.ot_active & ~stops,
        ot_proc_present=state.ot_proc_present & ~(stops & state.ot_pid_valid),
    )
    return state, success


def apply_red_action(
    state: EnvState,
    events: Events,
    action_type: jax.Array,
    target: jax.Array,
    noise: StepNoise,
    params: EnvParams,
) -> tuple[EnvState, Events, RedOutcome]:
    """Execute Red's chosen action (``target`` is a subnet index for DiscoverRemoteSystems)."""
    host = jnp.clip(target, 0, NUM_HOSTS - 1)
    host_mask = jnp.arange(NUM_HOSTS) == target

    is_drs = action_type == RedActionType.DISCOVER_REMOTE_SYSTEMS
    is_dns = action_type == RedActionType.DISCOVER_NETWORK_SERVICES
    is_exploit = action_type == RedActionType.EXPLOIT_REMOTE_SERVICE
    is_privesc = action_type == RedActionType.PRIVILEGE_ESCALATE
    is_impact = action_type == RedActionType.IMPACT

    # Every handler is a no-op unless its action is the active one, so they can simply be chained.
    state, ok_drs = _discover_remote_systems(state, target, is_drs)
    state, events, dns_routable = _discover_network_services(
        state, events, host_mask & is_dns, host, params
    )
    state, events, ok_exp, exploit = _exploit_remote_service(
        state, events, host_mask & is_exploit, host, noise, params
    )
    state, ok_pe = _privilege_escalate(state, host_mask & is_privesc, host, noise)
    state, ok_imp = _impact(state, host, is_impact)

    success = jnp.select(
        [is_drs, is_dns, is_exploit, is_privesc, is_impact],
        [ok_drs, jnp.bool_(True), ok_exp, ok_pe, ok_imp],
        jnp.bool_(False),
    )
    outcome = RedOutcome(
        success=success,
        dns_ports=is_dns & dns_routable,
        exploit=jnp.where(is_exploit, exploit, -1).astype(jnp.int32),
    )
    return state, events, outcome
