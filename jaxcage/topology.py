"""Scenario2's fixed network as numpy tables: subnets, OS, services, exploitability, decoy rules.

Every table is derived from ``CybORG/Shared/Scenarios/Scenario2.yaml`` and the host images in
``CybORG/Shared/Scenarios/images/*.yaml``, read through CybORG's parsing rules (process types come
from ``Enums.ProcessType.parse_string``, which matches lower-cased names exactly). The network never
changes in CAGE2, so these are module constants closed over by the jitted functions, not state.
"""

from __future__ import annotations

import numpy as np

from jaxcage.constants import (
    NUM_DECOYS,
    NUM_EXPLOITS,
    NUM_HOSTS,
    NUM_PORTS,
    NUM_SUBNETS,
    Decoy,
    Exploit,
    Host,
    Port,
    Subnet,
)

H = Host
E = Exploit
P = Port

# --- subnets -------------------------------------------------------------------------------------
HOST_SUBNET = np.array(
    [
        Subnet.ENTERPRISE,  # Defender
        Subnet.ENTERPRISE,
        Subnet.ENTERPRISE,
        Subnet.ENTERPRISE,
        Subnet.OPERATIONAL,
        Subnet.OPERATIONAL,
        Subnet.OPERATIONAL,
        Subnet.OPERATIONAL,
        Subnet.USER,
        Subnet.USER,
        Subnet.USER,
        Subnet.USER,
        Subnet.USER,
    ],
    dtype=np.int32,
)
# SUBNET_HOSTS[s, h]: host h is in subnet s (DiscoverRemoteSystems of s reveals exactly these IPs).
SUBNET_HOSTS = np.zeros((NUM_SUBNETS, NUM_HOSTS), dtype=bool)
SUBNET_HOSTS[HOST_SUBNET, np.arange(NUM_HOSTS)] = True

# Red's access to the Operational subnet needs a session on a host whose name contains
# "Enterprise" (the "None"-NACL hack in ConcreteActions/ConcreteAction.py::check_routable).
IS_ENTERPRISE = np.zeros(NUM_HOSTS, dtype=bool)
IS_ENTERPRISE[[H.ENTERPRISE0, H.ENTERPRISE1, H.ENTERPRISE2]] = True
IS_OPERATIONAL = HOST_SUBNET == Subnet.OPERATIONAL
# Meander's failure cascade matches hostnames by substring: 'Op' and 'Ent' (Agents/.../Meander.py).
NAME_HAS_OP = IS_OPERATIONAL.copy()
NAME_HAS_ENT = IS_ENTERPRISE.copy()
USER_HOSTS = HOST_SUBNET == Subnet.USER

# --- operating systems ---------------------------------------------------------------------------
IS_WINDOWS = np.zeros(NUM_HOSTS, dtype=bool)
IS_WINDOWS[[H.ENTERPRISE1, H.ENTERPRISE2, H.USER0, H.USER1, H.USER2]] = True
IS_LINUX = ~IS_WINDOWS

# --- listening connections -----------------------------------------------------------------------
# STATIC_LISTEN[h, p]: number of the host's original process connections on port class p. Every
# original connection is a listening one, so this is what a port scan reports (and how many events
# it creates), in CybORG's process order (spec §1.2, confirmed by running DiscoverNetworkServices).
STATIC_LISTEN = np.zeros((NUM_HOSTS, NUM_PORTS), dtype=np.int32)


def _listen(host: Host, *ports: Port) -> None:
    for port in ports:
        STATIC_LISTEN[host, port] += 1


_listen(H.DEFENDER, P.P22, P.P53, P.P53, P.P68)
_listen(H.ENTERPRISE0, P.P22)
for _h in (H.ENTERPRISE1, H.ENTERPRISE2):
    _listen(_h, P.P22, P.P135, P.P3389, P.P445, P.P139, P.P80, P.P443)
for _h in (H.OP_HOST0, H.OP_HOST1, H.OP_HOST2, H.OP_SERVER0):
    _listen(_h, P.P22)
for _h in (H.USER0, H.USER1):
    _listen(_h, P.P22, P.P21)
_listen(H.USER2, P.P445, P.P139, P.P135, P.P3389)
_listen(H.USER3, P.P80, P.P3389, P.P443, P.P25)
_listen(H.USER4, P.P22, P.P80, P.P3390, P.P443, P.P25)
STATIC_PORT_USED = STATIC_LISTEN > 0

# --- exploits ------------------------------------------------------------------------------------
# Selection weights and the remembered port each needs (ExploitRemoteService.py). SQLInjection also
# needs 80 or 443 remembered; that extra condition is applied in dynamics/red.py.
EXPLOIT_WEIGHT = np.array([2.0, 1.0, 3.0, 4.0, 0.1, 5.0, 6.0, 7.0], dtype=np.float32)
# Integer rank of the weights (larger = preferred); avoids float comparisons when finding the top.
EXPLOIT_RANK = np.argsort(np.argsort(EXPLOIT_WEIGHT)).astype(np.int32)
EXPLOIT_PORT = np.array(
    [P.P139, P.P3389, P.P80, P.P443, P.P22, P.P3390, P.P25, P.P21], dtype=np.int32
)

# REAL_MATCH[h, e]: an original process on h has exploit e's process type and a connection on its
# port, so sim_exploit finds a real (non-decoy) vulnerable process. Notable absences (quirk 4):
# BlueKeep on User3 (3389 is mysql), EternalBlue on Enterprise1/2 (smss.exe parses to UNKNOWN).
REAL_MATCH = np.zeros((NUM_HOSTS, NUM_EXPLOITS), dtype=bool)
REAL_MATCH[H.USER2, E.ETERNAL_BLUE] = True
REAL_MATCH[[H.USER2, H.ENTERPRISE1, H.ENTERPRISE2], E.BLUE_KEEP] = True
for _e in (E.HTTP_RFI, E.HTTPS_RFI):
    REAL_MATCH[[H.USER3, H.USER4, H.ENTERPRISE1, H.ENTERPRISE2], _e] = True
REAL_MATCH[STATIC_LISTEN[:, P.P22] > 0, E.SSH_BRUTE_FORCE] = True  # every sshd parses to SSH
REAL_MATCH[H.USER4, E.SQL_INJECTION] = True
REAL_MATCH[[H.USER3, H.USER4], E.HARAKA_RCE] = True
REAL_MATCH[[H.USER0, H.USER1], E.FTP_DIRECTORY_TRAVERSAL] = True

# SSHBruteForce succeeds only with a 'Bruteforceable' user; Velociraptor_Server has none (so an
# SSH attempt on Defender always fails but still leaves 10 events).
HAS_BRUTEFORCE_USER = np.ones(NUM_HOSTS, dtype=bool)
HAS_BRUTEFORCE_USER[H.DEFENDER] = False

# SHELL_PRIVILEGED[h, e]: the reverse shell runs as the vulnerable process's user; True when that
# user is root/SYSTEM, so the new session already counts for the reward (quirk 6).
SHELL_PRIVILEGED = np.zeros((NUM_HOSTS, NUM_EXPLOITS), dtype=bool)
SHELL_PRIVILEGED[H.USER2, E.ETERNAL_BLUE] = True  # smss.exe: SYSTEM
SHELL_PRIVILEGED[[H.ENTERPRISE1, H.ENTERPRISE2], E.BLUE_KEEP] = True  # svchost 3389: SYSTEM
SHELL_PRIVILEGED[H.USER4, E.SQL_INJECTION] = True  # mysql: root
SHELL_PRIVILEGED[[H.USER3, H.USER4], E.HARAKA_RCE] = True  # smtp: root
SHELL_PRIVILEGED[[H.USER0, H.USER1], E.FTP_DIRECTORY_TRAVERSAL] = True  # femitter: SYSTEM
# Only reachable under rules "debugged" (REAL_MATCH_DEBUGGED below), where the processes match:
SHELL_PRIVILEGED[[H.ENTERPRISE1, H.ENTERPRISE2], E.ETERNAL_BLUE] = True  # smss.exe: SYSTEM
SHELL_PRIVILEGED[H.USER3, E.SQL_INJECTION] = True  # mysql: root

# --- decoys --------------------------------------------------------------------------------------
D = Decoy
# Port each decoy listens on, and the port it checks for being free (DecoyVsftpd checks 21 but
# listens on 80: quirk 3, ConcreteActions/DecoyVsftpd.py).
DECOY_LISTEN_PORT = np.array(
    [P.P80, P.P21, P.P25, P.P139, P.P22, P.P3389, P.P443, P.P80], dtype=np.int32
)
DECOY_CHECK_PORT = np.array(
    [P.P80, P.P21, P.P25, P.P139, P.P22, P.P3389, P.P443, P.P21], dtype=np.int32
)
# DECOY_OS_OK[d, h]: the decoy's OS condition holds on h.
DECOY_OS_OK = np.ones((NUM_DECOYS, NUM_HOSTS), dtype=bool)
for _d in (D.FEMITTER, D.SMSS, D.SVCHOST):
    DECOY_OS_OK[_d] = IS_WINDOWS
for _d in (D.HARAKA_SMPT, D.VSFTPD):
    DECOY_OS_OK[_d] = IS_LINUX
# DECOY_CATCHES[d, e]: a decoy of kind d is a process that exploit e matches (type + port).
DECOY_CATCHES = np.zeros((NUM_DECOYS, NUM_EXPLOITS), dtype=bool)
DECOY_CATCHES[D.APACHE, E.HTTP_RFI] = True
DECOY_CATCHES[D.VSFTPD, E.HTTP_RFI] = True
DECOY_CATCHES[D.FEMITTER, E.FTP_DIRECTORY_TRAVERSAL] = True
DECOY_CATCHES[D.HARAKA_SMPT, E.HARAKA_RCE] = True
DECOY_CATCHES[D.SMSS, E.ETERNAL_BLUE] = True
DECOY_CATCHES[D.SSHD, E.SSH_BRUTE_FORCE] = True
DECOY_CATCHES[D.SVCHOST, E.BLUE_KEEP] = True
DECOY_CATCHES[D.TOMCAT, E.HTTPS_RFI] = True
# one-hot of each decoy's listening port: (NUM_DECOYS, NUM_PORTS)
DECOY_PORT_ONEHOT = np.eye(NUM_PORTS, dtype=np.int32)[DECOY_LISTEN_PORT]

# --- CybORG++ Debugged_CybORG (rules "debugged"): the tables its fixes change -------------------
# Paths relative to CybORG_plus_plus/Debugged_CybORG/CybORG/CybORG (commit c343476).
# Flag.USER3_MYSQL_ON_3390 (Shared/Scenarios/images/linux_user_host_image1.yaml): User3's mysql
# listens on 3390 instead of 3389, so a scan shows 3390 and SQLInjection (which also needs 80 or
# 443, both open) finds it; BlueKeep is no longer offered there.
STATIC_LISTEN_USER3_3390 = STATIC_LISTEN.copy()
STATIC_LISTEN_USER3_3390[H.USER3, P.P3389] -= 1
STATIC_LISTEN_USER3_3390[H.USER3, P.P3390] += 1
REAL_MATCH_USER3_3390 = np.zeros((NUM_HOSTS, NUM_EXPLOITS), dtype=bool)
REAL_MATCH_USER3_3390[H.USER3, E.SQL_INJECTION] = True  # mysql (type from its name), root
# Flag.INTERNAL_SMSS_IS_SMB (images/Internal_image.yaml, the image of Enterprise1 and Enterprise2):
# smss.exe gets 'Process Type: smb'; ConcreteActions/EternalBlue.py (port 139, smb, Windows, no
# MS17_010 patch: Scenario2 lists none) then works, as SYSTEM.
REAL_MATCH_SMSS_SMB = np.zeros((NUM_HOSTS, NUM_EXPLOITS), dtype=bool)
REAL_MATCH_SMSS_SMB[[H.ENTERPRISE1, H.ENTERPRISE2], E.ETERNAL_BLUE] = True
# Flag.VSFTPD_LISTENS_ON_21 (Shared/Actions/ConcreteActions/DecoyVsftpd.py): the decoy listens on
# 21, the port it checks. Its process type stays 'webserver', so no exploit matches it any more:
# HTTPRFI looks on 80, and the only exploit on 21, FTPDirectoryTraversal, wants a femitter.
DECOY_LISTEN_PORT_VSFTPD_21 = DECOY_LISTEN_PORT.copy()
DECOY_LISTEN_PORT_VSFTPD_21[D.VSFTPD] = P.P21
DECOY_PORT_ONEHOT_VSFTPD_21 = np.eye(NUM_PORTS, dtype=np.int32)[DECOY_LISTEN_PORT_VSFTPD_21]
DECOY_CATCHES_VSFTPD_21 = DECOY_CATCHES.copy()
DECOY_CATCHES_VSFTPD_21[D.VSFTPD] = False
# Flag.REWARD_SERVICE_USERS (Shared/RedRewardCalculator.py::PwnRewardCalculator): a Red session
# counts for confidentiality if its username is one of these, whatever the host's OS. The
# usernames Red's sessions can have in Scenario2 (Scenario2.yaml and the images): session 0 runs as
# SYSTEM; a reverse shell as the exploited process's user; an SSH session as the host's first
# Bruteforceable user (SSHBruteForce.py); PrivilegeEscalate makes a session root / SYSTEM.
REWARD_USERS_DEBUGGED = frozenset({"NetworkService", "vagrant", "root", "SYSTEM", "pi", "www-data"})
# SHELL_USER[(host, exploit)]: user of the process an exploit gets a shell from (REAL_MATCH, in
# either rule set). EternalBlue: smss.exe; BlueKeep: svchost.exe on 3389; HTTP(S)RFI: apache2 /
# tomcat8.exe; SQLInjection: mysql; HarakaRCE: smtp; FTPDirectoryTraversal: femitter.exe.
SHELL_USER: dict[tuple[int, int], str] = {
    (H.USER2, E.ETERNAL_BLUE): "SYSTEM",
    (H.ENTERPRISE1, E.ETERNAL_BLUE): "SYSTEM",
    (H.ENTERPRISE2, E.ETERNAL_BLUE): "SYSTEM",
    (H.USER2, E.BLUE_KEEP): "NetworkService",
    (H.ENTERPRISE1, E.BLUE_KEEP): "SYSTEM",
    (H.ENTERPRISE2, E.BLUE_KEEP): "SYSTEM",
    **{(h, e): "www-data" for h in (H.USER3, H.USER4) for e in (E.HTTP_RFI, E.HTTPS_RFI)},
    **{
        (h, e): "NetworkService"
        for h in (H.ENTERPRISE1, H.ENTERPRISE2)
        for e in (E.HTTP_RFI, E.HTTPS_RFI)
    },
    (H.USER3, E.SQL_INJECTION): "root",
    (H.USER4, E.SQL_INJECTION): "root",
    (H.USER3, E.HARAKA_RCE): "root",
    (H.USER4, E.HARAKA_RCE): "root",
    (H.USER0, E.FTP_DIRECTORY_TRAVERSAL): "SYSTEM",
    (H.USER1, E.FTP_DIRECTORY_TRAVERSAL): "SYSTEM",
}
# SSH_USER[h]: the first Bruteforceable user of the host's image ('pi' on the Linux images,
# 'vagrant' on the Windows ones; Velociraptor_Server has none).
SSH_USER: dict[int, str] = {
    int(h): ("vagrant" if IS_WINDOWS[h] else "pi") for h in np.flatnonzero(HAS_BRUTEFORCE_USER)
}
RED_START_USER = "SYSTEM"  # Scenario2.yaml Red starting_sessions (session 0 on User0)
_REAL_ANY = REAL_MATCH | REAL_MATCH_USER3_3390 | REAL_MATCH_SMSS_SMB
_REAL_ANY[:, E.SSH_BRUTE_FORCE] = False  # SSH sessions: SSH_USER
assert {(int(h), int(e)) for h, e in zip(*np.nonzero(_REAL_ANY), strict=True)} == set(SHELL_USER)
assert all(SHELL_PRIVILEGED[k] == (u in ("root", "SYSTEM")) for k, u in SHELL_USER.items())
# Every session Red can hold in Scenario2 runs as a listed user, so under REWARD_SERVICE_USERS a
# host counts as soon as Red holds any session there: no per-session usernames are needed.
RED_USERS_ALL_REWARDED = (
    set(SHELL_USER.values()) | set(SSH_USER.values()) | {RED_START_USER, "root", "SYSTEM"}
) <= REWARD_USERS_DEBUGGED
assert RED_USERS_ALL_REWARDED, "a Red session username outside REWARD_USERS_DEBUGGED: model it"

# --- reward --------------------------------------------------------------------------------------
# Confidentiality value in tenths of a reward point (RedRewardCalculator mapping None 0, Low 0.1,
# Medium 1.0, High 10.0; hosts without a value count as Low).
CONFIDENTIALITY_TENTHS = np.array([1, 10, 10, 10, 1, 1, 1, 10, 0, 1, 1, 1, 1], dtype=np.int32)
OT_AVAILABILITY_TENTHS = 100  # Op_Server0, AvailabilityValue High
RESTORE_COST_TENTHS = 10

# --- what a successful PrivilegeEscalate's ExploreHost reveals (Scenario2.yaml Hosts.*.info) ------
# PRIVESC_REVEALS_IP[h, k]: escalating on h reveals host k's IP (own interfaces, plus the 'info').
PRIVESC_REVEALS_IP = np.eye(NUM_HOSTS, dtype=bool)
PRIVESC_REVEALS_IP[[H.USER1, H.USER2], H.ENTERPRISE1] = True
PRIVESC_REVEALS_IP[[H.USER3, H.USER4], H.ENTERPRISE0] = True
PRIVESC_REVEALS_IP[H.ENTERPRISE2, H.OP_SERVER0] = True

# --- green ---------------------------------------------------------------------------------------
# GreenAgent's port-scan targets (Agents/SimpleAgents/GreenAgent.py): User0..4, Enterprise0..2.
GREEN_TARGETS = np.zeros(NUM_HOSTS, dtype=bool)
GREEN_TARGETS[[H.USER0, H.USER1, H.USER2, H.USER3, H.USER4]] = True
GREEN_TARGETS[[H.ENTERPRISE0, H.ENTERPRISE1, H.ENTERPRISE2]] = True

# --- B_line ---------------------------------------------------------------------------------------
# Failure jumps (Agents/SimpleAgents/B_line.py).
BLINE_JUMPS = np.array([0, 1, 2, 2, 2, 2, 5, 5, 5, 5, 9, 9, 9, 12, 13], dtype=np.int32)
BLINE_NUM_STAGES = 15
# Stage-1 target U is drawn uniformly from User1..4; stage-4 target E depends on U (the first
# observation key containing "Enterprise" after escalating U: ExploreHost of U's 'info').
BLINE_USER_CANDIDATES = np.zeros(NUM_HOSTS, dtype=bool)
BLINE_USER_CANDIDATES[[H.USER1, H.USER2, H.USER3, H.USER4]] = True
BLINE_ENTERPRISE_FOR_USER = np.full(NUM_HOSTS, -1, dtype=np.int32)
BLINE_ENTERPRISE_FOR_USER[[H.USER1, H.USER2]] = H.ENTERPRISE1
BLINE_ENTERPRISE_FOR_USER[[H.USER3, H.USER4]] = H.ENTERPRISE0
