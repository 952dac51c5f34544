"""Environment state and parameters as pytrees, and the (deterministic) initial state.

CybORG keeps Scenario2's state as Python objects (``CybORG/Simulator/State.py``, ``Host.py``,
``Session.py``) plus the agents' private memories (``B_line.py``, ``Meander.py``, the Red
``ActionSpace``, ``BlueTableWrapper.blue_info``). jaxcage keeps exactly the part of that which can
influence a future observation, reward or red decision, as fixed-shape arrays indexed by host
(order: ``constants.HOST_NAMES``). Red sessions are kept as counts by class instead of lists,
because every rule that reads them only distinguishes privileged / removable / other sessions.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from jaxcage.constants import (
    NUM_DECOYS,
    NUM_EXPLOITS,
    NUM_HOSTS,
    NUM_SUBNETS,
    GreenAgent,
    Host,
    RedAgent,
    Subnet,
)
from jaxcage.rules import DEFAULT_RULES, RULE_NAMES


class EnvParams(struct.PyTreeNode):
    """Traced environment parameters: one compiled program serves every value of these.

    ``red_agent`` and ``green_agent`` select the opponent and the green agent per environment (so a
    vmapped batch can mix B_line and Meander). ``max_steps`` is compared against the step counter,
    never used as a shape, so 30/50/100 share one compilation. ``rules`` selects the CybORG version
    reproduced (``jaxcage.rules``: 0 = current, 1 = leaderboard, 2 = debugged), traced as well, so
    a batch can mix rule sets. The two probabilities are CybORG's hard-coded constants; they are
    parameters only so ablations need no code change.
    """

    red_agent: jax.Array = struct.field(default_factory=lambda: jnp.int32(RedAgent.B_LINE))
    green_agent: jax.Array = struct.field(default_factory=lambda: jnp.int32(GreenAgent.SLEEP))
    max_steps: jax.Array = struct.field(default_factory=lambda: jnp.int32(100))
    # ExploitRemoteService: probability of taking the top-weighted exploit when >= 2 apply.
    exploit_top_prob: jax.Array = struct.field(default_factory=lambda: jnp.float32(0.75))
    # ExploitAction.detection_rate: probability a successful reverse shell leaves a PID event.
    detection_prob: jax.Array = struct.field(default_factory=lambda: jnp.float32(0.95))
    # jaxcage.rules.RULE_NAMES index of the rule set (CybORG version) the dynamics follow.
    rules: jax.Array = struct.field(
        default_factory=lambda: jnp.int32(RULE_NAMES.index(DEFAULT_RULES))
    )


class EnvState(struct.PyTreeNode):
    """Full Scenario2 state for one environment. Every leaf has a fixed shape and dtype."""

    # --- true network state ---------------------------------------------------------------------
    red_priv: jax.Array  # (13,) int32: Red sessions running as root/SYSTEM (User0 keeps session 0)
    red_user_removable: jax.Array  # (13,) int32: user-level shells whose PID Blue detected
    red_user_hidden: jax.Array  # (13,) int32: user sessions Remove can't kill (SSH, undetected)
    malware_file: jax.Array  # (13,) bool: a cmd.* / escalate.* file (density 0.9) exists
    decoys: jax.Array  # (13, 8) int32: decoy processes of each kind (Vsftpd can stack)
    ot_proc_present: jax.Array  # () bool: Op_Server0's OTService process exists
    ot_active: jax.Array  # () bool: services['OTService']['active']
    ot_pid_valid: jax.Array  # () bool: service entry points at the process (not after Restore)
    # (13,) bool: the host's real Haraka process has ProcessVersion UNKNOWN, so HarakaRCE fails on
    # it. Only under rules with Flag.RESTORE_LOSES_PROCESS_VERSION (606813b), after a Restore.
    haraka_unknown: jax.Array
    # --- Blue's table (BlueTableWrapper.blue_info) ------------------------------------------------
    compromised: jax.Array  # (13,) int32: constants.Compromised
    # --- Red session-0 memory (RedAbstractSession) and Red ActionSpace knowledge -----------------
    red_mem_valid: jax.Array  # (13,) bool: the host's IP has a port list in session0.ports
    red_mem_ports: jax.Array  # (13, 8) bool: exploit e's port (EXPLOIT_PORT[e]) is remembered
    ot_service_known: jax.Array  # () bool: session0.ot_service set by escalating Op_Server0
    known_ip: jax.Array  # (13,) bool: ActionSpace.ip_address flags
    known_host: jax.Array  # (13,) bool: ActionSpace.hostname flags
    known_subnet: jax.Array  # (3,) bool: ActionSpace.subnet flags
    red_last_success: jax.Array  # () bool: Red's last action succeeded (reset: UNKNOWN = False)
    red_last_dns_ports: jax.Array  # () bool: Red's previous action was a DNS that returned ports
    # --- B_lineAgent ------------------------------------------------------------------------------
    bline_stage: jax.Array  # () int32: B_line.action (0..14)
    bline_user: jax.Array  # () int32: host index of the stage-1 target U, -1 until drawn
    bline_stage12_built: jax.Array  # () bool: action_history has stage 12
    # --- RedMeanderAgent --------------------------------------------------------------------------
    meander_scanned_subnets: jax.Array  # (3,) bool
    meander_scanned_ips: jax.Array  # (13,) bool
    meander_exploited_ips: jax.Array  # (13,) bool
    meander_escalated: jax.Array  # (13,) bool
    meander_host_ip_map: jax.Array  # (13,) bool: hostname has an entry in host_ip_map
    meander_last_ip: jax.Array  # () int32: host index of last_ip, -1 = None
    meander_last_host: jax.Array  # () int32: host index of last_host, -1 = None
    red_stuck: jax.Array  # () bool: Meander ran out of options (CybORG raises NotImplementedError)
    # --- bookkeeping ------------------------------------------------------------------------------
    time: jax.Array  # () int32: steps taken in this episode


def init_state() -> EnvState:
    """The Scenario2 state right after ``CybORG.reset()``.

    It is the same on every reset: the only randomness of a CybORG reset draws IP addresses, subnet
    blocks and session PIDs, none of which influence the dynamics (spec §6). Red starts with its
    SYSTEM session 0 on User0, knowing User0's IP, hostname and the User subnet (Red's INT in
    Scenario2.yaml; ``AgentInterface.set_init_obs`` marks everything else unknown).
    """
    zeros_h = jnp.zeros(NUM_HOSTS, dtype=jnp.int32)
    false_h = jnp.zeros(NUM_HOSTS, dtype=bool)
    user0 = jnp.arange(NUM_HOSTS) == Host.USER0
    return EnvState(
        red_priv=user0.astype(jnp.int32),
        red_user_removable=zeros_h,
        red_user_hidden=zeros_h,
        malware_file=false_h,
        decoys=jnp.zeros((NUM_HOSTS, NUM_DECOYS), dtype=jnp.int32),
        ot_proc_present=jnp.bool_(True),
        ot_active=jnp.bool_(True),
        ot_pid_valid=jnp.bool_(True),
        haraka_unknown=false_h,
        compromised=zeros_h,
        red_mem_valid=false_h,
        red_mem_ports=jnp.zeros((NUM_HOSTS, NUM_EXPLOITS), dtype=bool),
        ot_service_known=jnp.bool_(False),
        known_ip=user0,
        known_host=user0,
        known_subnet=jnp.arange(NUM_SUBNETS) == Subnet.USER,
        red_last_success=jnp.bool_(False),
        red_last_dns_ports=jnp.bool_(False),
        bline_stage=jnp.int32(0),
        bline_user=jnp.int32(-1),
        bline_stage12_built=jnp.bool_(False),
        meander_scanned_subnets=jnp.zeros(NUM_SUBNETS, dtype=bool),
        meander_scanned_ips=false_h,
        meander_exploited_ips=false_h,
        meander_escalated=false_h,
        meander_host_ip_map=false_h,
        meander_last_ip=jnp.int32(-1),
        meander_last_host=jnp.int32(-1),
        red_stuck=jnp.bool_(False),
        time=jnp.int32(0),
    )
