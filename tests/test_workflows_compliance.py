"""Compliance rules, alignment reward, WorkflowEnv and the scripted baselines, on built states."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcage.constants import NUM_HOSTS, Host, analyse, decoy, remove, restore
from jaxcage.env import make_params
from jaxcage.state import init_state
from jaxcage.true_state import RedSessionView, red_session_view
from jaxcage.workflows import orders
from jaxcage.workflows.baselines import (
    FIXED_ORDER_POLICIES,
    evaluate_policy,
    get_policy,
    greedy_exact,
    greedy_host,
    random_policy,
)
from jaxcage.workflows.compliance import (
    ComplianceSpec,
    compliance_step,
    compliance_step_sessions,
    compromised_hosts,
    episode_compliance,
    init_compliance,
    top_compromised_type,
)
from jaxcage.workflows.env import WorkflowEnv, order_types, policy_input

DESHU = orders.order_index("DESHU")
UDESH = orders.order_index("UDESH")


def _state(**sessions: dict[int, int]):
    """init_state() plus Red sessions: field name -> {host: count} added to the reset counts."""
    state = init_state()
    for name, per_host in sessions.items():
        arr = np.asarray(getattr(state, name)).copy()
        for host, n in per_host.items():
            arr[host] += n
        state = state.replace(**{name: jnp.asarray(arr, dtype=jnp.int32)})
    return state


def _run(spec, state, actions, order_idx):
    """Judge ``actions`` one after another against a fixed state; per-step (align, compliant)."""
    cstate = init_compliance()
    out = []
    for a in actions:
        cstate, align, is_fix, ok = compliance_step(spec, cstate, state, a, order_types(order_idx))
        out.append((float(align), bool(is_fix), bool(ok)))
    return cstate, out


def test_red_session_view_of_the_reset_state_is_the_user0_foothold():
    view = red_session_view(init_state())
    assert view.count.tolist() == [int(h == Host.USER0) for h in range(NUM_HOSTS)]
    assert view.privileged.tolist() == view.foothold.tolist() == view.any.tolist()
    assert not bool(view.beyond_foothold.any())


def test_foothold_counts_only_under_any_red_session():
    state = _state(red_user_hidden={Host.USER0: 1})  # a second session on User0
    assert compromised_hosts(init_state(), "any_red_session")[Host.USER0]
    assert not compromised_hosts(init_state(), "excluding_user0_foothold").any()
    assert compromised_hosts(state, "excluding_user0_foothold").tolist() == [
        h == Host.USER0 for h in range(NUM_HOSTS)
    ]


def test_state_rule_foothold_case():
    # Only the foothold: with the faithful compromise 'user' is always h*, so under DESHU a fix
    # on Op_Server0 is a violation; ignoring the foothold nothing is compromised: all neutral.
    faithful = ComplianceSpec(compromise="any_red_session")
    corrected = ComplianceSpec()
    actions = [restore(Host.OP_SERVER0), remove(Host.ENTERPRISE0), restore(Host.USER2)]
    _, steps = _run(faithful, init_state(), actions, DESHU)
    assert [ok for _, _, ok in steps] == [False, False, True]
    _, steps = _run(corrected, init_state(), actions, DESHU)
    assert [ok for _, _, ok in steps] == [True, True, True]


def test_state_rule_takes_highest_priority_compromised_type_and_host_target():
    state = _state(red_user_removable={Host.ENTERPRISE1: 1, Host.USER2: 1})
    order = order_types(UDESH)
    assert int(
        top_compromised_type(compromised_hosts(state, "excluding_user0_foothold"), order)
    ) == (orders.USER)
    actions = [restore(Host.ENTERPRISE1), remove(Host.USER3), remove(Host.USER2)]
    _, steps = _run(ComplianceSpec(), state, actions, UDESH)
    assert [ok for _, _, ok in steps] == [False, True, True]
    # host-level target: User3 is clean, so that fix no longer counts
    _, steps = _run(ComplianceSpec(target="host"), state, actions, UDESH)
    assert [ok for _, _, ok in steps] == [False, False, True]
    # with DESHU, Enterprise1 is h*
    _, steps = _run(ComplianceSpec(), state, actions, DESHU)
    assert [ok for _, _, ok in steps] == [True, False, False]


def test_sequence_rule_and_alignment_telescopes():
    spec = ComplianceSpec(rule="sequence")
    # DESHU: E first is a violation; D, then E are compliant; U skips S and H: violation.
    actions = [remove(Host.ENTERPRISE0), restore(Host.DEFENDER), remove(Host.ENTERPRISE2)]
    actions += [restore(Host.USER1)]
    cstate, steps = _run(spec, init_state(), actions, DESHU)
    assert [ok for _, _, ok in steps] == [False, True, True, False]
    # running compliance 0, 1/2, 2/3, 1/2 -> rewards 30 * its increments
    np.testing.assert_allclose([a for a, _, _ in steps], [0.0, 15.0, 5.0, -5.0], atol=1e-5)
    assert int(cstate.total) == 4 and int(cstate.compliant) == 2
    assert sum(a for a, _, _ in steps) == pytest.approx(
        30 * float(episode_compliance(spec, cstate))
    )
    assert cstate.targeted.tolist() == [True, True, False, False, True]
    # the sequence rule ignores the state
    _, again = _run(spec, _state(red_priv={Host.OP_SERVER0: 1}), actions, DESHU)
    assert again == steps


def test_first_compliant_fix_pays_lambda():
    _, steps = _run(ComplianceSpec(lam=7.0), init_state(), [restore(Host.USER0)], DESHU)
    assert steps == [(pytest.approx(7.0), True, True)]


def test_non_fix_actions_leave_counters_and_reward_alone():
    spec = ComplianceSpec(compromise="any_red_session")
    actions = [0, 1, analyse(Host.USER1), decoy(3, Host.ENTERPRISE0), 131]
    cstate, steps = _run(spec, init_state(), actions, DESHU)
    assert all(a == 0.0 and not fix and not ok for a, fix, ok in steps)
    assert int(cstate.total) == 0 and not bool(cstate.targeted.any())


def test_no_fix_episode_compliance():
    cstate = init_compliance()
    assert float(episode_compliance(ComplianceSpec(), cstate)) == 0.5
    assert float(episode_compliance(ComplianceSpec(nofix_value=1.0), cstate)) == 1.0


def test_sessions_path_equals_env_state_path():
    state = _state(red_user_hidden={Host.OP_HOST1: 1}, red_priv={Host.ENTERPRISE0: 1})
    view = red_session_view(state)
    spec = ComplianceSpec()
    for a in (remove(Host.OP_HOST1), restore(Host.ENTERPRISE0), restore(Host.USER0)):
        got = compliance_step_sessions(spec, init_compliance(), view, a, order_types(5))
        want = compliance_step(spec, init_compliance(), state, a, order_types(5))
        assert jax.tree.all(jax.tree.map(lambda x, y: bool(jnp.all(x == y)), got, want))


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("rule", "fixed-types", "rule"),
        ("compromise", "any", "compromise"),
        ("target", "subnet", "target"),
        ("lam", -1.0, "lam"),
        ("nofix_value", 2.0, "nofix_value"),
    ],
)
def test_spec_validation(field, value, match):
    with pytest.raises(ValueError, match=match):
        ComplianceSpec(**{field: value}).validate()
    with pytest.raises(ValueError, match=match):
        WorkflowEnv(ComplianceSpec(**{field: value}))


def test_reset_rejects_bad_order():
    with pytest.raises(ValueError, match="order_idx"):
        WorkflowEnv().reset(jax.random.key(0), make_params(), 120)


def _view(hosts, extra_user0=False):
    count = np.zeros(NUM_HOSTS, np.int32)
    count[list(hosts)] = 1
    count[Host.USER0] += 1 + int(extra_user0)
    foothold = np.arange(NUM_HOSTS) == Host.USER0
    return RedSessionView(jnp.asarray(count), jnp.asarray(foothold), jnp.asarray(foothold))


def test_greedy_policies_on_hand_built_sessions():
    obs = jnp.zeros(52, jnp.int32)
    keys = jax.random.split(jax.random.key(0), 40)
    user_restores = {restore(h) for h in range(Host.USER0, NUM_HOSTS)}
    # only the foothold: the exact greedy restores some user host, the host-level one sleeps
    exact = {int(greedy_exact(k, obs, _view([]), jnp.int32(DESHU))) for k in keys}
    assert exact == user_restores  # uniform over all 5 user hosts, compromised or not
    assert int(greedy_host(keys[0], obs, _view([]), jnp.int32(DESHU))) == 0
    # Enterprise1 + Op_Host2 compromised; DESHU -> enterprise first
    view = _view([Host.ENTERPRISE1, Host.OP_HOST2])
    host = {int(greedy_host(k, obs, view, jnp.int32(DESHU))) for k in keys}
    assert host == {restore(Host.ENTERPRISE1)}
    exact = {int(greedy_exact(k, obs, view, jnp.int32(DESHU))) for k in keys}
    assert exact == {restore(h) for h in (Host.ENTERPRISE0, Host.ENTERPRISE1, Host.ENTERPRISE2)}
    # UDESH: the exact greedy chases the foothold's type; the host-level one skips to enterprise
    assert {int(greedy_exact(k, obs, view, jnp.int32(UDESH))) for k in keys} == (user_restores)
    assert int(greedy_host(keys[0], obs, view, jnp.int32(UDESH))) == (restore(Host.ENTERPRISE1))
    # a canonical fixed order ignores the env's workflow
    _, fixed = FIXED_ORDER_POLICIES["operational_focus"]  # SHDEU
    view = _view([Host.OP_SERVER0, Host.ENTERPRISE0])
    assert int(fixed(keys[0], obs, view, jnp.int32(UDESH))) == restore(Host.OP_SERVER0)
    actions = [int(random_policy(k, obs, view, jnp.int32(0))) for k in keys]
    assert min(actions) >= 0 and max(actions) < 145 and len(set(actions)) > 20


def test_unknown_baseline():
    with pytest.raises(ValueError, match="unknown workflow baseline"):
        get_policy("smart")
    with pytest.raises(ValueError, match="follows order"):
        evaluate_policy("reverse", 0, episodes=2)


@pytest.mark.slow
def test_workflow_env_episodes_windows_and_orders():
    """One compiled program: 150 steps of a random policy in both modes, 3 workflows vmapped."""
    params = make_params("b_line", max_steps=50)
    envs = {
        "auto": WorkflowEnv(),
        "windows": WorkflowEnv(
            ComplianceSpec(rule="sequence"), continuing_windows=True, resample_orders=True
        ),
    }

    def rollout(key, order_idx):
        out = {}
        for name, env in envs.items():
            _, ws = env.reset(key, params, order_idx)

            def body(ws, k, env=env):
                ka, ks = jax.random.split(k)
                a = jax.random.randint(ka, (), 0, 145)
                # a quarter of the steps are fixes, so episodes have several
                a = jnp.where(jax.random.bernoulli(ka, 0.25), 132 + a % 13, a)
                obs, ws2, r, ar, done, info = env.step(ks, ws, a, params)
                rec = {"r": r, "ar": ar, "done": done, "time": ws2.env_state.time}
                rec |= {"order": ws2.order_idx, "obs": policy_input(obs, ws2)}
                rec |= {k2: info[k2] for k2 in ("compliance", "fixes", "is_fix", "is_compliant")}
                return ws2, rec

            _, out[name] = jax.lax.scan(body, ws, jax.random.split(key, 150))
        return out

    orders_in = jnp.array([DESHU, UDESH, 77], jnp.int32)
    keys = jax.random.split(jax.random.key(3), 3)
    out = jax.device_get(jax.jit(jax.vmap(rollout))(keys, orders_in))
    for name, rec in out.items():
        assert rec["obs"].shape == (3, 150, 77)
        done = rec["done"]
        assert done.sum(axis=1).tolist() == [3, 3, 3], name  # steps 50, 100, 150
        assert np.flatnonzero(done[0]).tolist() == [49, 99, 149]
        for e in range(3):
            for ep in range(3):
                sl = slice(50 * ep, 50 * ep + 50)
                fixes = rec["is_fix"][e, sl].sum()
                assert rec["fixes"][e, 50 * ep + 49] == fixes
                c = rec["is_compliant"][e, sl].sum() / max(fixes, 1) if fixes else 0.5
                assert rec["compliance"][e, 50 * ep + 49] == pytest.approx(c, abs=1e-6)
                # the alignment rewards of an episode sum to lam * c (0 without fixes)
                assert rec["ar"][e, sl].sum() == pytest.approx(30 * c if fixes else 0.0, abs=1e-4)
    # standard episodes restart the env; continuing windows do not
    assert out["auto"]["time"][0, 49] == 0 and out["auto"]["time"][0, 50] == 1
    assert out["windows"]["time"][0, 149] == 150
    # the workflow one-hot follows the order; resample_orders redraws it at each episode end
    np.testing.assert_array_equal(out["auto"]["order"][:, -1], np.asarray(orders_in))
    np.testing.assert_array_equal(out["auto"]["obs"][1, 0, 52:], orders.ONEHOT[UDESH])
    drawn = out["windows"]["order"]
    np.testing.assert_array_equal(drawn[:, 0], np.asarray(orders_in))
    assert (drawn[:, 50:] != drawn[:, :1]).any()
    np.testing.assert_array_equal(out["windows"]["obs"][:, 60, 52:], orders.ONEHOT[drawn[:, 60]])


@pytest.mark.slow
def test_evaluate_greedy_host_baseline():
    out = evaluate_policy("greedy_host", DESHU, episodes=1024, seed=1)
    assert set(out) == {
        "env_return",
        "align_return",
        "compliance",
        "compliance_repo",
        "fixes",
        "compliant_fixes",
    }
    assert out["env_return"].shape == (1024,)
    np.testing.assert_allclose(out["align_return"], 30 * out["compliance"], atol=1e-4)
    assert (out["compliance"] == 1.0).all() and (out["fixes"] > 20).all()
    # it Sleeps when nothing is compromised, so returns are far better than restoring every step
    assert -80 < out["env_return"].mean() < -30


def test_nofix_penalty_only_at_the_end_of_an_episode_without_fixes():
    """``nofix_penalty`` (spec §3, dead in the repo, off by default): -penalty * lam on the last
    step of an episode with no fix; nothing when the episode fixed something."""
    params = make_params("b_line", max_steps=5)

    def episode(spec, first_action):
        env = WorkflowEnv(spec)
        _, ws = env.reset(jax.random.key(0), params, DESHU)
        aligns, dones = [], []
        for t in range(5):
            action = first_action if t == 0 else 0  # then Sleep
            _, ws, _, ar, done, _ = env.step(jax.random.key(t + 1), ws, action, params)
            aligns.append(float(ar))
            dones.append(bool(done))
        assert dones == [False] * 4 + [True]
        return aligns

    penal = ComplianceSpec(nofix_penalty=0.2)
    assert episode(penal, 0) == [0.0, 0.0, 0.0, 0.0, pytest.approx(-6.0)]
    assert episode(ComplianceSpec(), 0) == [0.0] * 5
    fixed = episode(penal, restore(Host.ENTERPRISE0))  # one fix: no penalty at the end
    assert fixed[-1] == 0.0
    with pytest.raises(ValueError, match="nofix_penalty"):
        ComplianceSpec(nofix_penalty=-1.0).validate()
