"""The activity classifier, the Compromised column rules and the vector layout
(BlueTableWrapper), including the masking cases of spec §3.4 and the green false positive."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from envtools import H, compromised, make_state, obs_rows, red_at, step

from jaxcage import constants as C
from jaxcage.constants import Activity, Compromised, Decoy, Port
from jaxcage.dynamics.blue import BlueOutcome
from jaxcage.dynamics.events import Events, no_events
from jaxcage.observation import classify_activity, observation_vector, update_compromised


def events_on(host, ports, shell=False, decoy=False):
    ev = no_events()
    counts = np.zeros((13, 13), np.int32)
    for p in ports:
        counts[H[host], p] += 1
    return Events(
        port_counts=jnp.asarray(counts),
        shell_4444=ev.shell_4444.at[H[host]].set(shell),
        decoy_entry=ev.decoy_entry.at[H[host]].set(decoy),
    )


@pytest.mark.parametrize(
    ("ports", "shell", "decoy", "expected"),
    [
        ([], False, False, Activity.NONE),
        ([Port.P22], False, False, Activity.SCAN),  # one scanned port: rule 5
        ([Port.P22, Port.P21], False, False, Activity.SCAN),
        ([Port.P80, Port.P3389, Port.P443, Port.P25], False, False, Activity.SCAN),  # rule 1
        ([Port.P139, Port.EPHEMERAL], True, False, Activity.EXPLOIT),  # detected shell: rule 2
        ([Port.P139], False, False, Activity.SCAN),  # undetected shell
        ([Port.P21, Port.P21], False, False, Activity.SCAN),  # decoy hit: 2 entries, 1 port
        ([Port.P22] * 10, False, False, Activity.EXPLOIT),  # SSH brute force: rule 3
        ([], False, True, Activity.NONE),  # decoy placed: rule 4
        ([Port.P21, Port.P21], False, True, Activity.EXPLOIT),  # decoy hit + new decoy: rule 3
        ([Port.P22], False, True, Activity.NONE),  # decoy placed while red scans: rule 4
        # Green scan of User2 masks a detected exploit (rule 1 fires before rule 2).
        (
            [Port.P445, Port.P139, Port.P135, Port.P3389, Port.P139, Port.EPHEMERAL],
            True,
            False,
            Activity.SCAN,
        ),
    ],
)
def test_activity_rules(ports, shell, decoy, expected):
    act = np.asarray(classify_activity(events_on("User2", ports, shell, decoy)))
    assert act[H["User2"]] == expected
    assert (np.delete(act, H["User2"]) == Activity.NONE).all()


def _blue(host=None, remove=False, restore=False, analysed=None):
    mask = np.zeros(13, bool)
    if host is not None:
        mask[H[host]] = True
    am = np.zeros(13, bool)
    if analysed is not None:
        am[H[analysed]] = True
    return BlueOutcome(
        host_mask=jnp.asarray(mask),
        is_remove=jnp.bool_(remove),
        is_restore=jnp.bool_(restore),
        analysed_malware=jnp.asarray(am),
        decoy_placed=jnp.zeros(13, bool),
        cost_tenths=jnp.int32(0),
    )


def test_compromised_rules_and_their_order():
    c0 = np.zeros(13, np.int32)
    c0[H["User1"]] = Compromised.PRIVILEGED
    act = np.zeros(13, np.int32)
    act[H["User1"]] = Activity.EXPLOIT
    # Exploit overwrites Privileged with User (quirk 10).
    c = np.asarray(update_compromised(jnp.asarray(c0), jnp.asarray(act), _blue()))
    assert c[H["User1"]] == Compromised.USER
    # Restore then an exploit in the same step -> User; Restore alone -> No.
    c = np.asarray(
        update_compromised(jnp.asarray(c0), jnp.asarray(act), _blue("User1", restore=True))
    )
    assert c[H["User1"]] == Compromised.USER
    c = np.asarray(
        update_compromised(jnp.asarray(c0), jnp.zeros(13, jnp.int32), _blue("User1", restore=True))
    )
    assert c[H["User1"]] == Compromised.NO
    # Remove -> Unknown (from anything but No).
    c = np.asarray(
        update_compromised(jnp.asarray(c0), jnp.zeros(13, jnp.int32), _blue("User1", remove=True))
    )
    assert c[H["User1"]] == Compromised.UNKNOWN
    # Analyse with malware -> Privileged, after the exploit rule.
    c = np.asarray(
        update_compromised(jnp.zeros(13, jnp.int32), jnp.asarray(act), _blue(analysed="User1"))
    )
    assert c[H["User1"]] == Compromised.PRIVILEGED


def test_vector_layout_bits():
    act = np.zeros(13, np.int32)
    comp = np.zeros(13, np.int32)
    act[0], comp[0] = Activity.SCAN, Compromised.UNKNOWN
    act[1], comp[1] = Activity.EXPLOIT, Compromised.USER
    comp[12] = Compromised.PRIVILEGED
    v = np.asarray(observation_vector(jnp.asarray(act), jnp.asarray(comp)))
    assert v.shape == (52,)
    assert list(v[0:4]) == [1, 0, 1, 0] and list(v[4:8]) == [1, 1, 0, 1]
    assert list(v[48:52]) == [0, 0, 1, 1] and v[8:48].sum() == 0


def test_green_port_scan_is_a_false_positive_scan():
    state = make_state()
    s, obs, reward, trace = step(
        state, 0, red="sleep", green="random", green_scan=True, green_host=H["Enterprise1"]
    )
    assert int(trace.green_scan_host) == H["Enterprise1"]
    assert obs_rows(obs)["Enterprise1"] == (1, 0, 0, 0) and reward == 0
    # GreenAgent never scans Defender or Op hosts; a forced key there falls back to a valid host.
    _, _, _, trace = step(
        state, 0, red="sleep", green="random", green_scan=True, green_host=H["Op_Host0"]
    )
    assert int(trace.green_scan_host) in {
        H[h]
        for h in [
            "User0",
            "User1",
            "User2",
            "User3",
            "User4",
            "Enterprise0",
            "Enterprise1",
            "Enterprise2",
        ]
    }
    # The sleeping green (evaluation default) never scans.
    _, obs, _, trace = step(
        state, 0, red="sleep", green="sleep", green_scan=True, green_host=H["User1"]
    )
    assert int(trace.green_scan_host) == -1 and not obs.any()


def test_decoy_placed_in_the_step_red_scans_the_host_hides_the_scan():
    # B_line stage 4 scans Enterprise0 (U = User3) while Blue places DecoyApache there: entries are
    # [decoy, 22, 80] -> 3 entries on 2 ports, no 4444 -> rule 4: None (spec §3.4 masking case).
    state = make_state(bline_stage=3, red_last_success=True, bline_user=H["User3"])
    s, obs, _, trace = step(state, C.decoy(Decoy.APACHE, H["Enterprise0"]), red="b_line")
    assert int(trace.red_action_type) == C.RedActionType.DISCOVER_NETWORK_SERVICES
    assert int(trace.red_target) == H["Enterprise0"]
    assert obs_rows(obs)["Enterprise0"] == (0, 0, 0, 0)
    # The same scan without the decoy is a Scan; and the decoy is now in Red's memory.
    _, obs, _, _ = step(state, 0, red="b_line")
    assert obs_rows(obs)["Enterprise0"] == (1, 0, 0, 0)
    assert bool(s.red_mem_ports[H["Enterprise0"], C.Exploit.HTTP_RFI])


def test_exploit_marks_user_and_analyse_then_privileged():
    state = make_state(
        bline_stage=1,
        bline_user=H["User1"],
        red_last_success=True,
        red_mem_valid={"User1": True},
    )
    state = state.replace(
        red_mem_ports=state.red_mem_ports.at[H["User1"], C.Exploit.FTP_DIRECTORY_TRAVERSAL]
        .set(True)
        .at[H["User1"], C.Exploit.SSH_BRUTE_FORCE]
        .set(True)
    )
    s, obs, reward, trace = step(state, 0, red="b_line", detected=True)
    assert obs_rows(obs)["User1"] == (1, 1, 0, 1)  # Exploit, User
    assert reward == -1  # FTP gives a SYSTEM shell on User1 (value 0.1)
    s, obs, _, _ = step(s, C.analyse(H["User1"]), red="sleep")
    assert obs_rows(obs)["User1"] == (0, 0, 1, 1)
    assert compromised(s)["User1"] == "PRIVILEGED"


def test_remove_after_detection_clears_the_shell_but_table_says_unknown():
    state = red_at("User3", removable=1, compromised={"User3": Compromised.USER})
    s, obs, _, _ = step(state, C.remove(H["User3"]), red="sleep")
    assert int(s.red_user_removable[H["User3"]]) == 0
    assert obs_rows(obs)["User3"] == (0, 0, 1, 0)
