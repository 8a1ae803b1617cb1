"""Offline RL: a buffer filled from a behaviour log, learners that never touch an env."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

from liveq.algos.bc import BCAgent
from liveq.algos.cql import BanditConfig, CQLAgent, CQLConfig
from liveq.algos.dqn import DQNConfig
from liveq.cli.main import main
from liveq.core.config import ConfigError
from liveq.core.errors import NonFiniteError
from liveq.experiments.offline_rl_sim import (
    ENV_ID,
    SMALL_WORLD,
    OfflineRLConfig,
    learner_config,
    log_behaviour,
    online,
    support,
    train_learners,
)
from liveq.experiments.ope_sim import SimLog, build_policy, parse_policy
from liveq.sim.vector import make_vec_env
from liveq.train.offline import log_transitions, train_offline

torch.set_num_threads(1)


class RecordingEnv:
    """The wrapped vector env, keeping a copy of everything reset and step returned."""

    def __init__(self, env):
        self.env, self.outputs = env, []

    def __getattr__(self, name):
        return getattr(self.env, name)

    def reset(self, **kwargs):
        out = self.env.reset(**kwargs)
        self.outputs.append((None, copy.deepcopy(out[0]), None, None, None))
        return out

    def step(self, actions):
        out = self.env.step(actions)
        self.outputs.append((np.array(actions), *copy.deepcopy(out[:4])))
        return out


@pytest.fixture(scope="module")
def recorded():
    world = {**SMALL_WORLD, "max_session_steps": 3}  # truncations within a few steps
    env = RecordingEnv(make_vec_env(ENV_ID, 8, world))
    behaviour = build_policy(parse_policy("popular:0.3"), env, seed=1)
    logged = log_transitions(env, behaviour, steps=12, seed=5)
    return env, logged


def _stored(buffer, row):
    pick = np.array([row])
    obs = buffer.codec.decode({k: v[pick] for k, v in buffer.obs.items()})
    nxt = buffer.codec.decode({k: v[pick] for k, v in buffer.next_obs.items()})
    return obs, nxt


def _assert_same_obs(stored, expected, slot):
    for key in ("viewer", "candidates", "mask"):
        np.testing.assert_allclose(stored[key][0], expected[key][slot], rtol=0, atol=1e-6)


def test_buffer_holds_exactly_the_logged_transitions(recorded):
    env, logged = recorded
    buffer, n = logged.buffer, 8
    outputs = env.outputs  # [reset, step 1, ..., step 12]
    assert buffer.size == 12 * n and logged.stored == len(buffer)
    ended = [np.zeros(n, bool)] + [o[3] | o[4] for o in outputs[1:]]
    for t, slot in [(0, 0), (1, 3), (5, 7), (11, 2)]:
        row = t * n + slot
        actions, next_obs, reward, terminated, _ = outputs[t + 1]
        assert buffer.valid[row] == (not ended[t][slot])
        assert buffer.actions[row] == actions[slot]
        assert buffer.rewards[row] == np.float32(reward[slot])
        assert buffer.terminated[row] == float(terminated[slot])
        obs, nxt = _stored(buffer, row)
        _assert_same_obs(obs, outputs[t][1], slot)
        _assert_same_obs(nxt, next_obs, slot)


def test_autoreset_rows_are_invalid_and_truncation_still_bootstraps(recorded):
    env, logged = recorded
    buffer, n = logged.buffer, 8
    steps = env.outputs[1:]
    truncated = np.array([s[4] for s in steps])  # (12, n)
    terminated = np.array([s[3] for s in steps])
    ends = terminated | truncated
    assert truncated.any() and logged.episodes == int(ends.sum())
    valid = buffer.valid.reshape(12, n)
    assert valid[0].all() and np.array_equal(valid[1:], ~ends[:-1])
    assert not buffer.terminated.reshape(12, n)[truncated].any()
    rewards = np.array([s[2] for s in steps])
    assert logged.reward_sum == pytest.approx(float(rewards[valid].sum()))


def _small_agent(**changes):
    env = make_vec_env(ENV_ID, 1, SMALL_WORLD)
    config = CQLConfig(**{"hidden_sizes": [32, 32], "batch_size": 32, "cql_alpha": 0.1,
                          **changes})
    agent = CQLAgent(env.single_observation_space, env.single_action_space, config, seed=3)
    env.close()
    return agent


def test_train_offline_never_steps_an_env(recorded, monkeypatch):
    env, logged = recorded
    for target in (env.env, env.env.unwrapped.core):
        for name in ("step", "reset"):
            monkeypatch.setattr(target, name, lambda *a, **k: pytest.fail("env was used"))
    agent = _small_agent()
    monkeypatch.setattr(agent, "act", lambda *a, **k: pytest.fail("agent acted"))
    before = [p.detach().clone() for p in agent.q_net.parameters()]
    stats = train_offline(agent, logged.buffer, 20, seed=0)
    assert agent.updates == 20 and stats["gradient_steps"] == 20
    assert any(not torch.equal(a, b) for a, b in zip(before, agent.q_net.parameters(),
                                                     strict=True))


def test_same_seed_same_weights(recorded):
    _, logged = recorded

    def weights(seed):
        agent = _small_agent()
        train_offline(agent, logged.buffer, 30, seed=seed)
        return agent.state_dict()["q_net"]

    first, again, other = weights(7), weights(7), weights(8)
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert any(not torch.equal(first[k], other[k]) for k in first)


def test_train_offline_rejects_bad_budgets(recorded):
    _, logged = recorded
    with pytest.raises(ConfigError, match="gradient_steps must be at least 1"):
        train_offline(_small_agent(), logged.buffer, 0, seed=0)


def test_train_offline_summarises_every_statistic_and_stops_on_nan(recorded):
    _, logged = recorded
    stats = train_offline(_small_agent(), logged.buffer, 20, seed=0)
    assert {"loss_first", "loss_last", "q_mean_last", "cql_penalty_last",
            "td_loss_first"} <= stats.keys()
    with pytest.raises(NonFiniteError, match=r"gradient step \d+: \w+ = (nan|inf)"):
        train_offline(_small_agent(lr=1e30), logged.buffer, 50, seed=0)


def test_learner_configs():
    config = OfflineRLConfig(cql_alpha=0.3)
    dqn = learner_config(config, "dqn")
    assert type(dqn) is CQLConfig and dqn.cql_alpha == 0.3 and dqn.gamma == config.dqn.gamma
    bandit = learner_config(config, "bandit")
    assert type(bandit) is BanditConfig and (bandit.gamma, bandit.cql_alpha) == (0.0, 0.3)
    assert type(learner_config(config, "dqn-nocql")) is DQNConfig
    bc = learner_config(config, "bc")
    assert (bc.lr, bc.hidden_sizes, bc.batch_size) == (config.dqn.lr, config.dqn.hidden_sizes,
                                                       config.dqn.batch_size)
    assert config.dqn.gamma == 0.95  # the shared settings are left alone


def test_learners_are_the_registered_ones(recorded):
    _, logged = recorded
    config = OfflineRLConfig(learners=["dqn", "bc", "bandit"], gradient_steps=5)
    agents, stats = train_learners(config, logged, np.random.SeedSequence(0))
    assert type(agents["dqn"]) is CQLAgent and type(agents["bc"]) is BCAgent
    assert agents["bandit"].config.gamma == 0.0
    assert all(s["gradient_steps"] == 5 for s in stats.values())


def test_offline_rl_leaves_the_callers_torch_threads_alone(monkeypatch):
    import liveq.experiments.offline_rl_sim as sim

    seen = []
    monkeypatch.setattr(sim, "_run", lambda config, seed: seen.append(torch.get_num_threads()))
    torch.set_num_threads(2)
    try:
        sim.run_offline_rl(OfflineRLConfig(), seed=0)
        assert seen == [1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)


def test_support_by_hand():
    # round 0: the behaviour always shows candidate 0; round 1: a coin between 0 and 1
    log = SimLog(viewer=np.zeros((2, 1)), candidates=np.zeros((2, 2, 1)),
                 mask=np.ones((2, 2), bool), action=np.array([0, 1]),
                 pscore=np.array([1.0, 0.5]), reward=np.zeros(2), q_true=np.zeros((2, 2)),
                 behaviour_dist=np.array([[1.0, 0.0], [0.5, 0.5]]),
                 target_dists={"always 1": np.array([[0.0, 1.0], [0.0, 1.0]])})
    got = support(log)["always 1"]
    # w = (0 / 1, 1 / 0.5) = (0, 2): ESS = 2^2 / (2 * 4) = 0.5; round 0's target action
    # is one the behaviour never takes there: unsupported = (1 + 0) / 2
    assert got == {"ess_share": 0.5, "max_weight": 2.0, "unsupported": 0.5}


@pytest.mark.parametrize(("changes", "message"), [
    ({"learners": ["dqn", "cql"]}, "unknown \\['cql'\\]"),
    ({"env": {"slate_size": 2}}, "slate_size 1"),
    ({"episodes": 8, "sessions": 16}, "at least sessions"),
    ({"soften": 1.5}, "soften must be in"),
    ({"cql_alpha": 0.0}, "cql_alpha must be > 0"),
    ({"behaviour": "greedy"}, "unknown policy 'greedy'"),
])
def test_config_rejects_bad_values(changes, message):
    with pytest.raises(ConfigError, match=message):
        OfflineRLConfig(**changes).validate()


@pytest.fixture(scope="module")
def learned():
    config = OfflineRLConfig(sessions=64, steps=256, gradient_steps=1500,
                             learners=["dqn", "bc"], references=["random"], episodes=256)
    logged = log_behaviour(config, seed=11)
    agents, _ = train_learners(config, logged, np.random.SeedSequence(12))
    return config, {name: agent.greedy_policy() for name, agent in agents.items()}


@pytest.mark.slow
def test_offline_dqn_beats_random_online(learned):
    config, policies = learned
    results = online(config, {"dqn": policies["dqn"]}, seed=13)
    assert results["dqn"]["return"]["ci_low"] > results["random"]["return"]["ci_high"]
    assert results["dqn"]["return"]["mean"] > results["popular:0.3"]["return"]["mean"]


@pytest.mark.slow
def test_bc_recovers_the_behaviours_greedy_choice_in_another_world(learned):
    config, policies = learned
    heldout = log_behaviour(config, seed=99).buffer.sample(2048, np.random.default_rng(0))
    env = make_vec_env(ENV_ID, 1, SMALL_WORLD)
    greedy = build_policy(parse_policy("popular"), env, seed=0).act(heldout.obs).actions
    cloned = policies["bc"].act(heldout.obs).actions
    # the log follows popular-now in about 74% of states (30% uniform exploration); BC
    # learns its mode, not the mixture, though in another world than it learned in
    logged_share = np.mean(greedy == heldout.actions)
    assert 0.7 < logged_share < 0.78
    assert np.mean(cloned == greedy) > max(0.8, logged_share + 0.05)


TINY = ["--sessions", "16", "--steps", "32", "--heldout-steps", "8", "--gradient-steps",
        "40", "--episodes", "32", "--bootstrap", "20"]


def test_cli_offline_rl_writes_json_and_csv(tmp_path, capsys):
    js, cs = tmp_path / "rl.json", tmp_path / "rl.csv"
    assert main(["ope", "offline-rl", *TINY, "--json", str(js), "--csv", str(cs)]) == 0
    out = json.loads(js.read_text())
    assert list(out["online"]) == ["popular:0.3", "popular", "random", "dqn", "bc", "bandit",
                                   "online-dqn"]
    targets = list(dict.fromkeys(r["target"] for r in out["ope"]))
    assert targets[:4] == ["popular:0.3", "popular", "random", "dqn"]
    assert "dqn:0.1" in targets and "online-dqn:0.1" in targets
    behaviour = [r for r in out["ope"] if r["target"] == "popular:0.3"]
    assert all(abs(r["estimate"] - r["truth"]) < 0.5 for r in behaviour)
    assert cs.read_text().startswith("policy,measure,estimate,ci_low,ci_high,truth")
    printed = capsys.readouterr().out
    assert "return/session" in printed and "switch-dr" in printed


@pytest.mark.parametrize(("argv", "message"), [
    (["ope", "offline-rl", "--seeds", "2"], "--seeds do(es) not apply"),
    (["ope", "offline-rl", "--learners", "dqn,cql"], "unknown ['cql']"),
    (["ope", "sim", "--learners", "dqn"], "--learners do(es) not apply"),
    (["ope", "obd", "--no-online-dqn"], "--no-online-dqn do(es) not apply"),
])
def test_cli_offline_rl_usage_errors(argv, message, capsys):
    assert main([*argv, *TINY[:4]]) == 2
    assert message in capsys.readouterr().err


def test_cli_offline_rl_needs_a_livestream_config(tmp_path, capsys):
    path = tmp_path / "cartpole.yaml"
    path.write_text("env:\n  id: CartPole-v1\n")
    assert main(["ope", "offline-rl", "--config", str(path), *TINY]) == 2
    assert "needs a liveq/LiveStream env" in capsys.readouterr().err
