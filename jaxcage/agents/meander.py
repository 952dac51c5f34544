"""RedMeanderAgent: explores everything it knows, in random order, and impacts Op_Server0.

Mirrors ``CybORG/Agents/SimpleAgents/Meander.py``. Its lists become boolean masks over hosts (an IP
and its host are interchangeable in Scenario2: each host has one IP). Its choices read Red's
``ActionSpace`` known-flags (``state.known_*``). ``random.shuffle`` followed by "first eligible
item" is a uniform choice among the eligible items, drawn here as a masked argmax of random keys.
Only one such choice is ever used per call, so one key vector serves all of them.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxcage.constants import NUM_HOSTS, NUM_SUBNETS, Host, RedActionType
from jaxcage.noise import StepNoise, masked_argmax
from jaxcage.state import EnvState
from jaxcage.topology import NAME_HAS_ENT, NAME_HAS_OP


def _process_success(state: EnvState) -> EnvState:
    """``_process_success``: book-keeping of the previous exploit / escalation's outcome."""
    hosts = jnp.arange(NUM_HOSTS)
    success = state.red_last_success
    ip_mask = (hosts == state.meander_last_ip) & (state.meander_last_ip >= 0)
    host_mask = (hosts == state.meander_last_host) & (state.meander_last_host >= 0)

    host_ip_map = state.meander_host_ip_map | (ip_mask & success)
    ip_failed = jnp.any(ip_mask) & ~success
    exploited = state.meander_exploited_ips & ~(ip_mask & ~success)
    escalated = state.meander_escalated
    # _process_failed_ip: a failed exploit un-escalates every escalated Op host, or if there is
    # none every escalated Enterprise host (matched by substring 'Op' / 'Ent'), and forgets that
    # they were exploited, forcing their re-exploitation (quirk 17).
    escalated_op = escalated & jnp.asarray(NAME_HAS_OP)
    escalated_ent = escalated & jnp.asarray(NAME_HAS_ENT)
    cascade = ip_failed & jnp.where(jnp.any(escalated_op), escalated_op, escalated_ent)
    escalated = escalated & ~cascade
    exploited = exploited & ~cascade
    # A failed PrivilegeEscalate / Impact: un-escalate that host and forget its exploit.
    host_failed = host_mask & ~success
    escalated = escalated & ~host_failed
    exploited = exploited & ~(host_failed & host_ip_map)
    return state.replace(
        meander_host_ip_map=host_ip_map,
        meander_exploited_ips=exploited,
        meander_escalated=escalated,
        meander_last_ip=jnp.int32(-1),
        meander_last_host=jnp.int32(-1),
    )


def meander_decide(state: EnvState, noise: StepNoise) -> tuple[EnvState, jax.Array, jax.Array]:
    """Meander's ``get_action``: returns the updated agent memory and ``(action_type, target)``."""
    state = _process_success(state)
    hosts = jnp.arange(NUM_HOSTS)

    # 1. Always impact once Op_Server0 is escalated.
    impact = state.meander_escalated[Host.OP_SERVER0]
    # 2. The first known, unscanned subnet in dict order (Enterprise, Operational, User). A failed
    #    pingsweep is still marked scanned and never retried.
    subnet_eligible = state.known_subnet & ~state.meander_scanned_subnets
    subnet = jnp.argmax(subnet_eligible).astype(jnp.int32)
    drs = jnp.any(subnet_eligible)
    # 3. A known IP not scanned yet (each IP is scanned at most once per episode).
    ip_scan_eligible = state.known_ip & ~state.meander_scanned_ips
    dns = jnp.any(ip_scan_eligible)
    # 4. A known hostname not escalated, unless it was exploited and that exploit was since lost.
    lost = state.meander_host_ip_map & ~state.meander_exploited_ips
    escalate_eligible = state.known_host & ~state.meander_escalated & ~lost
    privesc = jnp.any(escalate_eligible)
    # 5. A known IP not yet exploited.
    exploit_eligible = state.known_ip & ~state.meander_exploited_ips
    exploit = jnp.any(exploit_eligible)

    eligible = jnp.select([dns, privesc], [ip_scan_eligible, escalate_eligible], exploit_eligible)
    chosen = masked_argmax(noise.red_target_key, eligible)
    chosen_mask = hosts == chosen

    branch = jnp.select(
        [impact, drs, dns, privesc, exploit],
        [
            RedActionType.IMPACT,
            RedActionType.DISCOVER_REMOTE_SYSTEMS,
            RedActionType.DISCOVER_NETWORK_SERVICES,
            RedActionType.PRIVILEGE_ESCALATE,
            RedActionType.EXPLOIT_REMOTE_SERVICE,
        ],
        # 6. CybORG raises NotImplementedError('Red Meander has run out of options!'); never seen
        #    in practice. jaxcage sleeps and flags it (PARITY.md).
        RedActionType.SLEEP,
    ).astype(jnp.int32)
    target = jnp.select(
        [branch == RedActionType.IMPACT, branch == RedActionType.DISCOVER_REMOTE_SYSTEMS],
        [jnp.int32(Host.OP_SERVER0), subnet],
        jnp.where(branch == RedActionType.SLEEP, -1, chosen),
    ).astype(jnp.int32)

    is_dns = branch == RedActionType.DISCOVER_NETWORK_SERVICES
    is_privesc = branch == RedActionType.PRIVILEGE_ESCALATE
    is_exploit = branch == RedActionType.EXPLOIT_REMOTE_SERVICE
    new_state = state.replace(
        meander_scanned_subnets=state.meander_scanned_subnets
        | ((jnp.arange(NUM_SUBNETS) == subnet) & (branch == RedActionType.DISCOVER_REMOTE_SYSTEMS)),
        meander_scanned_ips=state.meander_scanned_ips | (chosen_mask & is_dns),
        meander_escalated=state.meander_escalated | (chosen_mask & is_privesc),
        meander_exploited_ips=state.meander_exploited_ips | (chosen_mask & is_exploit),
        meander_last_ip=jnp.where(is_exploit, chosen, -1).astype(jnp.int32),
        meander_last_host=jnp.select(
            [branch == RedActionType.IMPACT, is_privesc], [jnp.int32(Host.OP_SERVER0), chosen], -1
        ).astype(jnp.int32),
        red_stuck=state.red_stuck | (branch == RedActionType.SLEEP),
    )
    return new_state, branch, target
