"""Top-K off-policy corrected REINFORCE: the correction's pieces against hand numbers, the
session returns, the learnt behaviour head, a known-answer bandit and bad input."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from liveq.algos.reinforce import ReinforceAgent, ReinforceConfig
from liveq.algos.topk_correction import (
    corrected_reinforce_loss,
    importance_weights,
    policy_log_probs,
    topk_multiplier,
)
from liveq.buffers.replay import DictCodec, ReplayBuffer
from liveq.buffers.session_returns import SessionBatch, SessionReturnBuffer, session_returns
from liveq.core.config import ConfigError, from_dict
from liveq.sim.vector import make_vec_env
from liveq.train.offline import log_transitions, train_offline
from liveq.train.registry import build_learner

SMALL_WORLD = {"n_streamers": 60, "n_candidates": 6, "followed_slots": 1, "trending_slots": 1}
ONE_STATE = gym.spaces.Box(0.0, 1.0, (1,), np.float32)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Hundreds of tiny updates: threads only add contention."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ---------------------------------------------------------------- the correction
def test_topk_multiplier_is_k_times_one_minus_pi_to_the_k_minus_1():
    pi = torch.tensor([0.2, 0.5, 1.0, 0.0])
    np.testing.assert_allclose(topk_multiplier(pi, 3).numpy(), [1.92, 0.75, 0.0, 3.0])
    np.testing.assert_allclose(topk_multiplier(pi, 1).numpy(), [1.0, 1.0, 1.0, 1.0])


def test_importance_weights_are_capped_then_normalised():
    pi, beta = torch.tensor([0.5, 0.1, 0.9]), torch.tensor([0.1, 0.1, 0.3])
    np.testing.assert_allclose(importance_weights(pi, beta, 0.0, False).numpy(), [5, 1, 3],
                               rtol=1e-6)
    np.testing.assert_allclose(importance_weights(pi, beta, 4.0, False).numpy(), [4, 1, 3],
                               rtol=1e-6)
    np.testing.assert_allclose(importance_weights(pi, beta, 4.0, True).numpy(),
                               np.array([4, 1, 3]) / (8 / 3), rtol=1e-6)
    valid = torch.tensor([True, True, False])  # the mean runs over valid entries only
    np.testing.assert_allclose(importance_weights(pi, beta, 4.0, True, valid).numpy(),
                               np.array([4, 1, 3]) / 2.5, rtol=1e-6)


def test_gradient_is_weight_times_multiplier_times_return_times_score_function():
    """d loss / d logits = -(1/B) sum_i w_i lambda_i R_i (onehot(a_i) - pi_i), by hand."""
    logits = torch.tensor([[1.0, 0.0, -1.0], [0.5, 0.5, 0.0]], requires_grad=True)
    actions, returns = torch.tensor([2, 0]), torch.tensor([2.0, -1.0])
    beta = torch.tensor([0.25, 0.5])
    loss, _ = corrected_reinforce_loss(policy_log_probs(logits, None), actions, returns, beta,
                                       correction="topk", top_k=2, cap=0.0, normalise=False)
    loss.backward()
    pi = torch.softmax(logits.detach(), dim=1).numpy()
    expected = np.zeros((2, 3))
    for i, (a, r, b) in enumerate(zip([2, 0], [2.0, -1.0], [0.25, 0.5], strict=True)):
        w, lam = pi[i, a] / b, 2 * (1 - pi[i, a])
        expected[i] = -(w * lam * r) * (np.eye(3)[a] - pi[i]) / 2
    np.testing.assert_allclose(logits.grad.numpy(), expected, rtol=1e-5, atol=1e-7)


def test_the_multiplier_shifts_the_push_toward_items_pi_ranks_low():
    """With K > 1 an item pi already favours is pushed less than one it does not."""
    logits = torch.tensor([[2.0, 0.0, 0.0], [2.0, 0.0, 0.0]], requires_grad=True)
    actions, returns, beta = torch.tensor([0, 1]), torch.ones(2), torch.full((2,), 1 / 3)
    pushes = {}
    for k in (1, 3):
        logits.grad = None
        loss, _ = corrected_reinforce_loss(policy_log_probs(logits, None), actions, returns,
                                           beta, correction="topk", top_k=k, cap=0.0,
                                           normalise=True)
        loss.backward()
        pushes[k] = -logits.grad[:, [0, 1]].diagonal().numpy()  # push on the taken logit
    assert pushes[3][1] / pushes[3][0] > 2 * pushes[1][1] / pushes[1][0]


def test_masked_candidates_get_probability_exactly_zero():
    logits = torch.tensor([[3.0, 1.0, 2.0]])
    probs = policy_log_probs(logits, torch.tensor([[True, False, True]])).exp()
    assert probs[0, 1].item() == 0.0 and probs.sum().item() == pytest.approx(1.0)


# ---------------------------------------------------------------- session returns
def test_session_returns_stop_at_ends_and_flag_cut_sessions():
    rewards = np.array([[1.0, 1.0], [2.0, 0.0], [4.0, 0.0], [8.0, 3.0]])
    ends = np.array([[False, False], [True, False], [False, True], [False, False]])
    returns, cut = session_returns(rewards, ends, 0.5)
    np.testing.assert_allclose(returns[:, 0], [2.0, 2.0, 8.0, 8.0])  # 1 + .5*2; 4 + .5*8
    np.testing.assert_allclose(returns[:, 1], [1.0, 0.0, 0.0, 3.0])
    np.testing.assert_array_equal(cut[:, 0], [False, False, True, True])
    np.testing.assert_array_equal(cut[:, 1], [False, False, False, True])


def test_session_return_buffer_walks_each_envs_rows():
    space = gym.spaces.Dict({"x": gym.spaces.Box(0.0, 1.0, (1,), np.float32)})
    buffer = ReplayBuffer(DictCodec(space), 8)
    step_rewards = [[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]]
    truncated = [[False, False], [True, False], [False, False]]
    for t, r in enumerate(step_rewards):
        obs = {"x": np.full((2, 1), t, np.float32)}
        buffer.add(obs, np.zeros(2, np.int64), np.array(r), obs, np.zeros(2),
                   valid=np.array([t != 2, True]), truncated=np.array(truncated[t]))
    view = SessionReturnBuffer(buffer, gamma=1.0, propensities=np.arange(6) / 10)
    np.testing.assert_allclose(view.returns[:6], [3, 60, 2, 50, 3, 30])
    assert len(view) == 5 and view.cut_rows == 3  # env 1's open session: rows 1, 3, 5
    batch = view.batch(np.array([1, 4]))
    np.testing.assert_allclose(batch.returns, [60, 3])
    np.testing.assert_allclose(batch.propensities, [0.1, 0.4])


# ---------------------------------------------------------------- the behaviour head
def contexts(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, 3, n)


BEHAVIOUR = np.array([[0.7, 0.1, 0.1, 0.1], [0.1, 0.2, 0.3, 0.4], [0.25, 0.25, 0.25, 0.25]])


def test_learnt_beta_converges_to_the_logged_behaviour():
    rng = np.random.default_rng(0)
    space = gym.spaces.Box(0.0, 1.0, (3,), np.float32)
    agent = ReinforceAgent(space, gym.spaces.Discrete(4), ReinforceConfig(
        correction="importance", behaviour="learnt", hidden_sizes=[16], lr=1e-2), seed=0)
    for _ in range(600):
        states = contexts(rng, 256)
        draws = rng.random((256, 1))
        actions = (draws > BEHAVIOUR[states].cumsum(axis=1)).sum(axis=1).clip(max=3)
        agent.update(SessionBatch(np.eye(3, dtype=np.float32)[states], actions,
                                  rng.random(256).astype(np.float32)))
    learnt = agent.behaviour_probabilities(np.eye(3, dtype=np.float32))
    np.testing.assert_allclose(learnt, BEHAVIOUR, atol=0.05)


def test_learning_beta_leaves_the_shared_encoder_alone():
    agent = ReinforceAgent(ONE_STATE, gym.spaces.Discrete(4), ReinforceConfig(
        hidden_sizes=[8, 8]), seed=1)
    obs = torch.ones((4, 1))
    _, beta_logits = agent.net.both_logits(obs)
    beta_logits.sum().backward()
    assert all(p.grad is None for p in agent.net.trunk.parameters())
    assert agent.net.beta_head.weight.grad is not None


# ---------------------------------------------------------------- learning, known answer
ARM_REWARDS = np.array([0.5, 1.0, 0.2, 0.1])
FAVOURITE = np.array([0.7, 0.1, 0.1, 0.1])  # the behaviour's favourite is arm 0


def bandit_policy(correction: str, behaviour: str, seed: int) -> np.ndarray:
    """pi after learning from a log of FAVOURITE on the one-state bandit ARM_REWARDS."""
    rng = np.random.default_rng(seed)
    config = ReinforceConfig(correction=correction, behaviour=behaviour, weight_cap=0.0,
                             hidden_sizes=[8], lr=0.05)
    agent = ReinforceAgent(ONE_STATE, gym.spaces.Discrete(4), config, seed=seed)
    obs = np.ones((256, 1), np.float32)
    for _ in range(400):
        actions = rng.choice(4, size=256, p=FAVOURITE)
        agent.update(SessionBatch(obs, actions, ARM_REWARDS[actions].astype(np.float32),
                                  FAVOURITE[actions]))
    return agent.sampling_policy().probabilities(obs[:1])[0]


@pytest.mark.parametrize("behaviour", ["logged", "learnt"])
def test_the_correction_finds_the_best_arm_and_plain_reinforce_the_favourite(behaviour):
    """Plain REINFORCE on the log converges to pi ~ beta * R (arm 0); with the importance
    weight the gradient is that of E_pi[R] and pi concentrates on arm 1."""
    corrected = bandit_policy("importance", behaviour, seed=0)
    plain = bandit_policy("none", behaviour, seed=0)
    assert corrected.argmax() == 1 and corrected[1] > 0.8
    assert plain.argmax() == 0
    biased = FAVOURITE * ARM_REWARDS / (FAVOURITE * ARM_REWARDS).sum()  # the fixed point
    np.testing.assert_allclose(plain, biased, atol=0.1)


# ---------------------------------------------------------------- logs and bad input
@pytest.mark.parametrize("slate_size", [1, 3])
def test_trains_through_train_offline_on_a_simulator_log(slate_size):
    env = make_vec_env("liveq/LiveStream-v0", 4, {**SMALL_WORLD, "slate_size": slate_size})
    logged = log_transitions(env, ReinforceAgent(
        env.single_observation_space, env.single_action_space,
        ReinforceConfig(hidden_sizes=[8]), seed=2).sampling_policy(), 40, seed=3)
    agent = build_learner("reinforce", env.single_observation_space, env.single_action_space,
                          ReinforceConfig(hidden_sizes=[8], batch_size=16), seed=4)
    stats = train_offline(agent, logged.buffer, 5, seed=5)
    assert agent.updates == 5 and np.isfinite(stats["loss_last"])
    actions = agent.sampling_policy().act(env.reset(seed=0)[0]).actions
    assert actions.shape == ((4,) if slate_size == 1 else (4, slate_size))
    env.close()


@pytest.mark.parametrize(("values", "message"), [
    ({"top_k": 0}, "agent.reinforce.top_k must be at least 1"),
    ({"correction": "doubly"}, "agent.reinforce.correction: unknown 'doubly'"),
    ({"behaviour": "guessed"}, "agent.reinforce.behaviour: unknown 'guessed'"),
    ({"weight_cap": -1.0}, "agent.reinforce.weight_cap must be >= 0"),
])
def test_bad_settings_name_the_field(values, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(ReinforceConfig, values, "agent.reinforce")


def test_top_k_above_the_candidates_is_refused():
    with pytest.raises(ConfigError, match="top_k = 5 exceeds the 4 candidates"):
        ReinforceAgent(ONE_STATE, gym.spaces.Discrete(4), ReinforceConfig(top_k=5), seed=0)


def test_logged_beta_needs_a_log_with_propensities():
    agent = ReinforceAgent(ONE_STATE, gym.spaces.Discrete(4), ReinforceConfig(
        behaviour="logged", hidden_sizes=[8]), seed=0)
    with pytest.raises(ConfigError, match="behaviour = logged needs the behaviour's"):
        agent.update(SessionBatch(np.ones((2, 1), np.float32), np.array([0, 1]),
                                  np.ones(2, np.float32)))
