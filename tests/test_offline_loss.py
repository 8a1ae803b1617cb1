"""Offline losses against numbers worked out by hand."""

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from liveq.algos.bc import BCAgent, BCConfig
from liveq.algos.cql import CQLAgent, CQLConfig
from liveq.algos.dqn import DQNAgent, DQNConfig, td_target
from liveq.algos.offline_loss import bc_cross_entropy, cql_penalty
from liveq.buffers.replay import ReplayBatch
from liveq.nets.q_networks import obs_to_tensor


def t(values):
    return torch.tensor(values, dtype=torch.float32)


LN3 = math.log(3.0)
# row 0: two valid candidates with Q 0 and 0, logged column 0
# row 1: Q 0 and ln 3 valid, a masked 100 that must not count, logged column 1
Q = t([[0.0, 0.0, -7.0], [0.0, LN3, 100.0]])
MASK = torch.tensor([[True, True, False], [True, True, False]])
TAKEN = torch.tensor([0, 1])


def test_cql_penalty_by_hand():
    # row 0: log(e^0 + e^0) - 0 = ln 2 ; row 1: log(1 + 3) - ln 3 = ln(4/3)
    expected = (math.log(2.0) + math.log(4.0 / 3.0)) / 2
    assert cql_penalty(Q, MASK, TAKEN).item() == pytest.approx(expected, abs=1e-6)


def test_cql_penalty_without_mask_counts_every_candidate():
    q = t([[0.0, 0.0, 0.0, 0.0]])
    # log(4 e^0) - 0 = ln 4
    assert cql_penalty(q, None, torch.tensor([2])).item() == pytest.approx(math.log(4.0))


def test_cql_penalty_is_zero_only_for_a_single_valid_candidate():
    q = t([[5.0, 1.0, 2.0]])
    only = torch.tensor([[True, False, False]])
    assert cql_penalty(q, only, torch.tensor([0])).item() == pytest.approx(0.0, abs=1e-6)
    assert cql_penalty(q, None, torch.tensor([0])).item() > 0


def test_cql_penalty_gradient_is_softmax_minus_onehot():
    q = t([[0.0, LN3]]).requires_grad_(True)
    cql_penalty(q, None, torch.tensor([1])).backward()
    # softmax = (1/4, 3/4); minus one-hot at column 1
    assert q.grad.tolist() == [pytest.approx([0.25, -0.25])]


def test_masked_logged_action_is_refused():
    with pytest.raises(ValueError, match="logged action"):
        cql_penalty(Q, MASK, torch.tensor([2, 1]))
    with pytest.raises(ValueError, match="logged action"):
        bc_cross_entropy(Q, MASK, torch.tensor([0, 2]))


def test_bc_cross_entropy_by_hand():
    # row 1 alone: -log(3 / (1 + 3)) = ln(4/3)
    loss = bc_cross_entropy(Q[1:], MASK[1:], TAKEN[1:])
    assert loss.item() == pytest.approx(math.log(4.0 / 3.0), abs=1e-6)


def test_bc_cross_entropy_equals_cql_penalty_on_the_same_candidates():
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(32, 9, generator=gen)
    mask = torch.rand(32, 9, generator=gen) < 0.7
    mask[:, 4] = True
    taken = torch.full((32,), 4)
    assert bc_cross_entropy(q, mask, taken).item() == pytest.approx(
        cql_penalty(q, mask, taken).item(), abs=1e-5)


REWARD = t([1.0, 2.0, 3.0, 4.0])
DONE = t([0.0, 1.0, 0.0, 0.0])
ONLINE = t([[1.0, 3.0], [5.0, 0.0], [9.0, 1.0], [0.0, 1.0]])
TARGET = t([[10.0, 20.0], [30.0, 40.0], [50.0, 60.0], [70.0, 80.0]])
NEXT_MASK = torch.tensor([[True, True], [True, True], [False, True], [False, False]])


def test_double_q_target_by_hand():
    y = td_target(REWARD, DONE, 0.5, TARGET, ONLINE, NEXT_MASK)
    # row 0: online picks column 1 -> 1 + 0.5 * 20 ; row 1: done -> 2
    # row 2: online prefers column 0 but only 1 is valid -> 3 + 0.5 * 60
    # row 3: no valid next candidate -> 4 + 0
    assert y.tolist() == pytest.approx([11.0, 2.0, 33.0, 4.0])


def test_double_q_target_gamma_zero_is_the_reward_and_has_no_gradient():
    online = ONLINE.clone().requires_grad_(True)
    y = td_target(REWARD, DONE, 0.0, TARGET, online, None)
    assert y.tolist() == pytest.approx(REWARD.tolist())
    assert not y.requires_grad


# --- the learners of logged data: CQL (DQN + penalty) and BC ------------------------------

def _logged_batch(n=16, k=4):
    gen = torch.Generator().manual_seed(2)

    def obs():
        mask = torch.rand(n, k, generator=gen) < 0.6
        mask[:, 1] = True
        return {"viewer": torch.randn(n, 3, generator=gen).numpy(),
                "candidates": torch.randn(n, k, 2, generator=gen).numpy(),
                "mask": mask.numpy().astype("int8")}

    return ReplayBatch(obs(), torch.ones(n, dtype=torch.long).numpy(),
                       torch.zeros(n).numpy(), obs(), torch.ones(n).numpy())


SPACE = gym.spaces.Dict({"viewer": gym.spaces.Box(-9, 9, (3,), np.float32),
                         "candidates": gym.spaces.Box(-9, 9, (4, 2), np.float32),
                         "mask": gym.spaces.MultiBinary(4)})


def _agent(cql_alpha):
    if cql_alpha == 0:
        return DQNAgent(SPACE, gym.spaces.Discrete(4), DQNConfig(hidden_sizes=[16, 16], lr=1e-2),
                        seed=0)
    config = CQLConfig(hidden_sizes=[16, 16], cql_alpha=cql_alpha, lr=1e-2)
    return CQLAgent(SPACE, gym.spaces.Discrete(4), config, seed=0)


def test_cql_adds_alpha_times_the_penalty_of_the_logged_state():
    batch = _logged_batch()
    plain, conservative = _agent(0.0), _agent(0.5)
    with torch.no_grad():
        q = conservative.q_net(obs_to_tensor(batch.obs))
    mask = torch.as_tensor(batch.obs["mask"]).bool()
    penalty = cql_penalty(q, mask, torch.as_tensor(batch.actions)).item()
    assert penalty > 0
    stats, plain_stats = conservative.update(batch), plain.update(batch)
    assert stats["loss"] - plain_stats["loss"] == pytest.approx(0.5 * penalty, rel=1e-5)
    assert stats["td_loss"] == plain_stats["loss"] and stats["cql_penalty"] == penalty


def test_cql_ranks_the_logged_action_first():
    # every logged transition took action 1 with reward 0: plain TD cannot prefer it,
    # the conservative penalty makes it the argmax among the valid actions
    batch = _logged_batch()
    agent = _agent(1.0)
    for _ in range(150):
        agent.update(batch)
    chosen = agent.greedy_policy().act(batch.obs).actions
    assert (chosen == 1).mean() > 0.9


def test_plain_dqn_does_not_prefer_the_logged_action():
    # the same data without the penalty: the logged action has no reason to win
    batch = _logged_batch()
    agent = _agent(0.0)
    for _ in range(150):
        agent.update(batch)
    assert (agent.greedy_policy().act(batch.obs).actions == 1).mean() < 0.9


def test_bc_loss_is_the_cross_entropy_of_the_logged_action():
    batch = _logged_batch()
    agent = BCAgent(SPACE, gym.spaces.Discrete(4), BCConfig(hidden_sizes=[16, 16], lr=1e-2), seed=0)
    obs = obs_to_tensor(batch.obs)
    with torch.no_grad():
        expected = bc_cross_entropy(agent.q_net(obs), obs["mask"],
                                    torch.as_tensor(batch.actions)).item()
    assert agent.update(batch)["loss"] == pytest.approx(expected, rel=1e-6)
    for _ in range(100):
        agent.update(batch)
    assert (agent.greedy_policy().act(batch.obs).actions == 1).mean() > 0.9
