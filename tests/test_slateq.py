"""SlateQ: the choice model, the slate value decomposition, slate optimisation, learning a
known best slate, replay of clicks, DQN's top-k on slates, and refused inputs."""

from __future__ import annotations

import itertools

import gymnasium as gym
import numpy as np
import pytest
import torch

from liveq.algos.bc import BCAgent, BCConfig
from liveq.algos.dqn import DQNAgent, DQNConfig
from liveq.algos.slate_choice import LogitChoiceModel, best_slates, shown_ranks, slate_value
from liveq.algos.slateq import SlateQAgent, SlateQConfig
from liveq.buffers.clicks import CLICK_FIELD, ClickCodec
from liveq.buffers.replay import DictCodec, ReplayBatch
from liveq.core.config import ConfigError, load_yaml
from liveq.policies.base import top_k_slate
from liveq.policies.baselines import RandomPolicy
from liveq.sim.vector import make_vec_env
from liveq.train.config import load_run_config
from liveq.train.loop import train
from liveq.train.offline import log_transitions, train_offline

SMALL_SLATES = {"n_streamers": 200, "n_candidates": 8, "followed_slots": 2,
                "trending_slots": 2, "slate_size": 3, "invalid_action": "empty"}


def logit_probs(u: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Choice probabilities `(n, L + 1)` (column 0 = none) of slates with item utilities
    `u (n, L)`, all shown."""
    weights = np.concatenate([np.ones((len(u), 1)), np.exp(u + bias)], axis=1)
    return weights / weights.sum(axis=1, keepdims=True)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Small networks: extra threads only add contention."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ---------------------------------------------------------------- choice model
def test_choice_model_recovers_known_logit_parameters():
    rng = np.random.default_rng(0)
    n, k, size, n_features = 20_000, 6, 3, 3
    weight, intercept = np.array([1.0, -0.5, 0.8]), -0.3
    bias = np.log(0.6) * np.arange(size)  # the simulator's position_decay form
    feats = rng.normal(size=(n, k, n_features)).astype(np.float32)
    slates = np.argsort(rng.random((n, k)), axis=1)[:, :size]
    u = np.take_along_axis(feats @ weight + intercept, slates, axis=1)
    probs = logit_probs(u, bias)
    clicks = (rng.random((n, 1)) > np.cumsum(probs, axis=1)).sum(axis=1) - 1
    model = LogitChoiceModel(n_features, size)
    optimizer = torch.optim.LBFGS(model.parameters(), max_iter=200, line_search_fn="strong_wolfe")
    args = (torch.as_tensor(feats), torch.as_tensor(slates),
            torch.ones(n, size, dtype=torch.bool), torch.as_tensor(clicks))

    def closure():
        optimizer.zero_grad()
        loss = model.loss(*args)
        loss.backward()
        return loss

    optimizer.step(closure)
    np.testing.assert_allclose(model.weight.detach().numpy(), weight, atol=0.06)
    assert abs(model.intercept.item() - intercept) < 0.06
    np.testing.assert_allclose(model.rank_bias().detach().numpy(), bias, atol=0.06)


def test_rank_bias_is_non_increasing_and_zero_at_the_top():
    model = LogitChoiceModel(2, 4)
    with torch.no_grad():
        model.rank_steps[:] = torch.tensor([-3.0, 2.0, 0.0])
    bias = model.rank_bias().detach().numpy()
    assert bias[0] == 0.0 and np.all(np.diff(bias) <= 0)


def test_empty_ranks_cannot_be_chosen():
    model = LogitChoiceModel(1, 3)
    logits = model.slate_logits(torch.zeros(1, 4), torch.tensor([[2, 0, 1]]),
                                torch.tensor([[True, False, True]]))
    assert torch.softmax(logits, 1)[0, 2] == 0.0
    assert shown_ranks(np.array([[2, 0, 1]]), np.array([[1, 1, 0, 0]], bool)).tolist() == [
        [False, True, True]]


# ---------------------------------------------------------------- slate value
def test_slate_value_matches_a_hand_computation():
    # utilities 0 and log 2 at ranks 0 and 1 with rank bias log 0.5 at rank 1:
    # weights none 1, rank0 e^0 = 1, rank1 2 * 0.5 = 1 -> each 1/3
    model = LogitChoiceModel(1, 2)
    with torch.no_grad():
        model.rank_steps[:] = torch.log(torch.expm1(torch.tensor([np.log(2.0)])))
    logits = model.slate_logits(torch.tensor([[0.0, np.log(2.0)]]), torch.tensor([[0, 1]]),
                                torch.ones(1, 2, dtype=torch.bool))
    probs = torch.softmax(logits, 1)
    np.testing.assert_allclose(probs.detach().numpy(), [[1 / 3, 1 / 3, 1 / 3]], atol=1e-6)
    value = slate_value(probs, torch.tensor([[6.0, 3.0]]), torch.tensor([-3.0]))
    assert value.item() == pytest.approx((6.0 + 3.0 - 3.0) / 3)


# ---------------------------------------------------------------- slate optimisation
def brute_force(u, q, q0, bias, mask):
    """The best value over every ordered slate of distinct allowed candidates."""
    allowed, size = np.flatnonzero(mask), len(bias)
    best = q0 if len(allowed) == 0 else -np.inf
    for slate in itertools.permutations(allowed, min(size, len(allowed))):
        w = np.exp(u[list(slate)] + bias[: len(slate)])
        best = max(best, (q0 + w @ q[list(slate)]) / (1.0 + w.sum()))
    return best


def test_exact_slate_optimisation_matches_brute_force():
    rng = np.random.default_rng(1)
    for _ in range(200):
        k = int(rng.integers(2, 7))
        size = int(rng.integers(1, k + 1))
        u, q = rng.normal(0, 1.5, (1, k)), rng.normal(0, 3, (1, k))
        q0 = rng.normal(0, 3, 1)
        bias = np.concatenate([[0.0], -np.cumsum(rng.exponential(0.5, size - 1))])
        mask = rng.random((1, k)) < 0.8
        scores, value = best_slates(u, q, q0, bias, mask)
        best = brute_force(u[0], q[0], q0[0], bias, mask[0])
        assert value[0] == pytest.approx(best, abs=1e-9)
        slate = top_k_slate(scores, size).actions.reshape(-1)[: mask.sum()]
        w = np.exp(u[0, slate] + bias[: len(slate)])
        assert (q0[0] + w @ q[0, slate]) / (1 + w.sum()) == pytest.approx(best, abs=1e-9)


def test_topk_ranks_by_attraction_times_value_and_can_be_worse_than_exact():
    u, q, q0 = np.log([[4.0, 1.0, 1.0]]), np.array([[1.0, 3.0, 0.0]]), np.array([2.0])
    bias, mask = np.zeros(1), np.ones((1, 3), bool)
    top_scores, top_value = best_slates(u, q, q0, bias, mask, "topk")
    assert top_k_slate(top_scores, 1).actions[0] == 0  # 4 * 1 > 1 * 3
    exact_scores, exact_value = best_slates(u, q, q0, bias, mask)
    assert top_k_slate(exact_scores, 1).actions[0] == 1
    assert top_value[0] == pytest.approx((2 + 4) / 5) and exact_value[0] == pytest.approx(2.5)
    with pytest.raises(ValueError, match="slate optimisation"):
        best_slates(u, q, q0, bias, mask, "greedy")


# ---------------------------------------------------------------- learning a known answer
K, SIZE = 5, 2
TRUE_U = np.array([-2.0, 0.9, 0.7, 0.6, 0.7])
REWARD = np.array([4.0, 1.0, 4.0, 0.0, 1.0])
TRUE_BIAS = np.log([1.0, 0.5])


def tiny_spaces():
    obs = gym.spaces.Dict({"viewer": gym.spaces.Box(-1, 1, (2,), np.float32),
                           "candidates": gym.spaces.Box(-1, 1, (K, K), np.float32),
                           "mask": gym.spaces.MultiBinary(K)})
    return obs, gym.spaces.MultiDiscrete([K] * SIZE)


def tiny_batch(rng: np.random.Generator, n: int) -> ReplayBatch:
    """One-step sessions: candidate features are one-hot ids, the viewer clicks by the true
    logit and the reward is the clicked item's (0 for nothing)."""
    obs = {"viewer": np.zeros((n, 2), np.float32),
           "candidates": np.tile(np.eye(K, dtype=np.float32), (n, 1, 1)),
           "mask": np.ones((n, K), np.int8)}
    slates = np.argsort(rng.random((n, K)), axis=1)[:, :SIZE]
    probs = logit_probs(TRUE_U[slates], TRUE_BIAS)
    rank = (rng.random((n, 1)) > np.cumsum(probs, axis=1)).sum(axis=1) - 1
    rewards = np.where(rank >= 0, REWARD[slates[np.arange(n), np.maximum(rank, 0)]], 0.0)
    return ReplayBatch(obs, slates, rewards.astype(np.float32), {**obs, CLICK_FIELD: rank},
                       np.ones(n, np.float32))


def test_slateq_learns_the_best_slate_of_a_known_world():
    config = SlateQConfig(gamma=0.0, lr=0.01, choice_lr=0.05, hidden_sizes=[16])
    agent = SlateQAgent(*tiny_spaces(), config, seed=0)
    rng = np.random.default_rng(2)
    for _ in range(300):
        agent.update(tiny_batch(rng, 128))
    best = max(itertools.permutations(range(K), SIZE), key=lambda s: slate_value(
        logit_probs(TRUE_U[list(s)][None], TRUE_BIAS), REWARD[list(s)][None], np.zeros(1))[0])
    obs = tiny_batch(rng, 1).obs
    assert tuple(agent.greedy_policy().act(obs).actions[0]) == best
    np.testing.assert_allclose(agent.choice.rank_bias().detach().numpy(), TRUE_BIAS, atol=0.15)
    # neither top two by reward (0, 2), by attraction (1, 2) nor by e^u * reward (2, 1):
    # the rarely opened item 0 pays only below the item that draws the clicks
    assert best == (2, 0)


# ---------------------------------------------------------------- replay and the loop
def test_env_reports_the_clicked_rank_and_replay_stores_it():
    env = make_vec_env("liveq/LiveStream-v0", 8, SMALL_SLATES)
    obs, infos = env.reset(seed=3)
    codec = ClickCodec(DictCodec(env.single_observation_space))
    assert (codec.encode(obs, infos)[CLICK_FIELD] == -1).all()
    for _ in range(5):
        obs, _, _, _, infos = env.step(top_k_slate(np.where(obs["mask"], 0.0, -np.inf), 3)
                                       .actions)
        ranks, shown = infos[CLICK_FIELD], infos["shown_ids"]
        opened = np.where(ranks >= 0, shown[np.arange(8), np.maximum(ranks, 0)], -1)
        np.testing.assert_array_equal(opened, infos["clicked_id"])
        stored = codec.encode(obs, infos)
        np.testing.assert_array_equal(codec.decode(stored)[CLICK_FIELD], ranks)
    env.close()


def test_slateq_and_dqn_train_on_a_slate_world(tmp_path):
    data = load_yaml("livestream_small")
    data["env"]["kwargs"].update(SMALL_SLATES)
    data["train"].update(total_env_steps=800, eval_every=0, checkpoint_every=0)
    dqn = load_run_config(data)
    assert train(dqn, tmp_path / "dqn")["updates"] > 0
    settings = {k: v for k, v in data["agent"].pop("dqn").items() if k != "double"}
    data["agent"] = {"name": "slateq", "slateq": settings}
    summary = train(load_run_config(data), tmp_path / "slateq")
    assert summary["updates"] > 0 and np.isfinite(summary["final_eval"]["return"])
    log = (tmp_path / "slateq" / "metrics.jsonl").read_text()
    assert "train/choice_nll" in log and "train/click_rate" in log


def test_dqn_ranks_top_k_by_item_q_on_slates():
    env = make_vec_env("liveq/LiveStream-v0", 4, SMALL_SLATES)
    obs, _ = env.reset(seed=5)
    agent = DQNAgent(env.single_observation_space, env.single_action_space,
                     DQNConfig(hidden_sizes=[16]), seed=0)
    policy = agent.greedy_policy()
    scores = policy.scores(obs)
    slates = policy.act(obs).actions
    assert slates.shape == (4, 3)
    np.testing.assert_array_equal(slates, np.argsort(-scores, axis=1, kind="stable")[:, :3])
    env.close()


# ---------------------------------------------------------------- bad input
def test_slateq_on_a_single_item_world_is_refused():
    env = make_vec_env("liveq/LiveStream-v0", 2, {**SMALL_SLATES, "slate_size": 1})
    with pytest.raises(ConfigError, match="slateq ranks slates.*slate_size above 1"):
        SlateQAgent(env.single_observation_space, env.single_action_space, SlateQConfig(), 0)
    env.close()
    box = gym.spaces.Box(-1, 1, (4,), np.float32)
    with pytest.raises(ConfigError, match="slateq needs dict observations"):
        SlateQAgent(box, gym.spaces.MultiDiscrete([4, 4]), SlateQConfig(), 0)
    with pytest.raises(ConfigError, match="one table"):
        SlateQAgent(tiny_spaces()[0], gym.spaces.MultiDiscrete([5, 4]), SlateQConfig(), 0)


def test_slate_larger_than_the_candidates_is_refused():
    data = load_yaml("livestream_slate")
    data["env"]["kwargs"]["slate_size"] = 17
    with pytest.raises(ConfigError, match=r"slate_size \(17\) cannot exceed n_candidates"):
        load_run_config(data)


def test_one_item_learners_name_the_slate_learners():
    obs, act = tiny_spaces()
    with pytest.raises(ConfigError, match="use agent slateq or dqn"):
        BCAgent(obs, act, BCConfig(), 0)


def test_bad_slateq_settings_are_named():
    with pytest.raises(ConfigError, match="slate_optimizer"):
        load_run_config({"agent": {"name": "slateq", "slateq": {"slate_optimizer": "lp"}}})


def test_batches_without_clicks_are_refused():
    agent = SlateQAgent(*tiny_spaces(), SlateQConfig(hidden_sizes=[8]), seed=0)
    batch = tiny_batch(np.random.default_rng(0), 4)
    with pytest.raises(ConfigError, match="which rank was opened"):
        agent.update(batch._replace(next_obs=batch.obs))


def test_slateq_and_dqn_learn_from_a_logged_slate_buffer():
    env = make_vec_env("liveq/LiveStream-v0", 8, SMALL_SLATES)
    logged = log_transitions(env, RandomPolicy(3, seed=0), 40, seed=1)
    batch = logged.buffer.sample(256, np.random.default_rng(0))
    assert batch.actions.shape == (256, 3) and (batch.next_obs[CLICK_FIELD] >= 0).any()
    for agent in (SlateQAgent(env.single_observation_space, env.single_action_space,
                              SlateQConfig(hidden_sizes=[16], batch_size=32), seed=0),
                  DQNAgent(env.single_observation_space, env.single_action_space,
                           DQNConfig(hidden_sizes=[16], batch_size=32), seed=0)):
        summary = train_offline(agent, logged.buffer, 20, seed=2)
        assert agent.updates == 20 and np.isfinite(summary["loss_last"])
    env.close()
