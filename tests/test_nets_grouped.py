"""The grouped reward head: the same two networks as `RewardFutureQNetwork` (values and
gradients to 1e-6 on the same weights), checkpoints of either kind load into the other, and
DQN's fast loss (taken actions only, target at a* only) is its full loss."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from liveq.algos.dqn import DQNAgent, DQNConfig, taken_q, td_target, to_q_batch
from liveq.buffers.replay import ReplayBatch
from liveq.core.errors import CheckpointError
from liveq.nets.decomposed import RewardFutureQNetwork
from liveq.nets.grouped import GroupedRewardFutureQNetwork, groupable, stack_adam_state
from liveq.nets.q_networks import CandidateQNetwork, load_weights
from liveq.train.checkpoint import load_checkpoint, save_checkpoint

K, VIEWER, CAND = 6, 5, 4
SPACE = gym.spaces.Dict({
    "viewer": gym.spaces.Box(-1.0, 1.0, (VIEWER,), np.float32),
    "candidates": gym.spaces.Box(-5.0, 5.0, (K, CAND), np.float32),
    "mask": gym.spaces.MultiBinary(K),
})


def observations(seed: int, n: int = 9) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    mask = (rng.random((n, K)) < 0.6).astype(np.int8)
    mask[:, 0] = 1
    return {"viewer": rng.standard_normal((n, VIEWER)).astype(np.float32),
            "candidates": rng.standard_normal((n, K, CAND)).astype(np.float32), "mask": mask}


def tensors(obs: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {k: torch.as_tensor(v) for k, v in obs.items()}


def pair(hidden: list[int]) -> tuple[RewardFutureQNetwork, GroupedRewardFutureQNetwork]:
    torch.manual_seed(len(hidden))
    reward, future = CandidateQNetwork(VIEWER, CAND, hidden), CandidateQNetwork(VIEWER, CAND,
                                                                                hidden)
    for net in (reward, future):  # weights of a trained network's size, not init's
        for p in net.parameters():
            p.data.mul_(2.0)
    return RewardFutureQNetwork(reward, future), GroupedRewardFutureQNetwork(reward, future)


@pytest.mark.parametrize("hidden", [[16, 16], [8], [12, 6, 3]])
def test_grouped_equals_the_two_networks(hidden):
    two, grouped = pair(hidden)
    obs, actions = tensors(observations(0)), torch.as_tensor([0, 1, 2, 3, 4, 5, 0, 1, 2])
    with torch.no_grad():
        torch.testing.assert_close(grouped(obs), two(obs), rtol=0, atol=1e-6)
        torch.testing.assert_close(grouped.reward_q(obs), two.reward(obs), rtol=0, atol=1e-6)
        reward, future = grouped.taken_parts(obs, actions)
        torch.testing.assert_close(reward, taken_q(two.reward(obs), actions), rtol=0, atol=1e-6)
        torch.testing.assert_close(future, taken_q(two.future(obs), actions), rtol=0, atol=1e-6)
        torch.testing.assert_close(grouped.taken(obs, actions), taken_q(two(obs), actions),
                                   rtol=0, atol=1e-6)
        torch.testing.assert_close(grouped.unstacked()(obs), two(obs), rtol=0, atol=1e-6)


def test_grouped_gradients_equal_the_two_networks():
    two, grouped = pair([16, 16])
    obs, actions = tensors(observations(1)), torch.as_tensor([5, 4, 3, 2, 1, 0, 5, 4, 3])
    reward, future = grouped.taken_parts(obs, actions)
    (((reward + future) ** 2).mean() + reward.mean()).backward()
    q = taken_q(two(obs), actions)
    ((q ** 2).mean() + taken_q(two.reward(obs), actions).mean()).backward()
    for key in grouped.keys:
        stacked = getattr(grouped, key.replace(".", "_")).grad
        for g, part in enumerate((two.reward, two.future)):
            want = dict(part.named_parameters())[key].grad
            torch.testing.assert_close(stacked[g], want, rtol=0, atol=1e-6)


def test_state_dicts_load_either_way():
    two, grouped = pair([16, 16])
    assert list(grouped.state_dict()) == list(two.state_dict())
    fresh = pair([16, 16])[1]
    with torch.no_grad():
        for p in fresh.parameters():
            p.zero_()
    load_weights(fresh, two.state_dict(), "q_net")
    obs = tensors(observations(2))
    with torch.no_grad():
        torch.testing.assert_close(fresh(obs), two(obs), rtol=0, atol=1e-6)
        back = RewardFutureQNetwork(CandidateQNetwork(VIEWER, CAND, [16, 16]),
                                    CandidateQNetwork(VIEWER, CAND, [16, 16]))
        back.load_state_dict(grouped.state_dict())
        torch.testing.assert_close(back(obs), grouped(obs), rtol=0, atol=1e-6)
    wider = pair([32, 16])[1]
    with pytest.raises(CheckpointError, match="saved shape"):
        load_weights(wider, two.state_dict(), "q_net")


def test_only_plain_candidate_networks_group():
    assert groupable(CandidateQNetwork(VIEWER, CAND, [8]))
    assert not groupable(CandidateQNetwork(VIEWER, CAND, [8], dueling=True))
    with pytest.raises(TypeError, match="same shape"):
        GroupedRewardFutureQNetwork(CandidateQNetwork(VIEWER, CAND, [8]),
                                    CandidateQNetwork(VIEWER, CAND, [4]))


def test_adam_state_of_the_two_networks_stacks():
    two, grouped = pair([8])
    optimizer = torch.optim.Adam(two.parameters(), lr=0.01)
    obs = tensors(observations(3))
    for _ in range(2):
        optimizer.zero_grad()
        two(obs).pow(2).mean().backward()
        optimizer.step()
    saved = optimizer.state_dict()
    stacked = stack_adam_state(saved, len(grouped.keys))
    params = list(two.reward.parameters()) + list(two.future.parameters())
    for i, key in enumerate(grouped.keys):
        state = stacked["state"][i]
        assert float(state["step"]) == 2.0
        for name in ("exp_avg", "exp_avg_sq"):
            torch.testing.assert_close(state[name][0], optimizer.state[params[i]][name])
            torch.testing.assert_close(state[name][1],
                                       optimizer.state[params[len(grouped.keys) + i]][name])
        assert key in dict(two.reward.named_parameters())
    fresh = torch.optim.Adam(grouped.parameters(), lr=0.01, fused=True)
    fresh.load_state_dict(stacked)
    assert stack_adam_state(stacked, len(grouped.keys)) is stacked


def demo_like_agent(**overrides) -> DQNAgent:
    config = DQNConfig(hidden_sizes=[16, 16], batch_size=9, gamma=0.9, reward_head=True,
                       **overrides)
    return DQNAgent(SPACE, gym.spaces.Discrete(K), config, seed=3)


def replay_batch(seed: int) -> ReplayBatch:
    rng = np.random.default_rng(seed)
    obs, next_obs = observations(seed), observations(seed + 100)
    next_obs["mask"][0] = 0  # a next state with no candidate: value 0
    actions = np.array([int(rng.choice(np.flatnonzero(m))) for m in obs["mask"]])
    return ReplayBatch(obs, actions, rng.uniform(0, 2, 9).astype(np.float32), next_obs,
                       (rng.random(9) < 0.2).astype(np.float32))


@pytest.mark.parametrize("double", [True, False])
def test_fast_loss_equals_the_full_loss(double):
    learner = demo_like_agent(double=double)
    assert isinstance(learner.q_net, GroupedRewardFutureQNetwork)
    b = to_q_batch(replay_batch(4))
    fast, fast_stats = learner.taken_loss(b)
    fast_td = learner.td_errors.copy()
    full, full_stats = learner.loss(learner.q_net(b.obs), b)
    assert fast.item() == pytest.approx(full.item(), rel=1e-6)
    np.testing.assert_allclose(fast_td, learner.td_errors, rtol=0, atol=1e-5)
    assert fast_stats["q_mean"] == pytest.approx(full_stats["q_mean"], rel=1e-6, abs=1e-7)
    with torch.no_grad():  # and by hand, from the two networks the grouped one stands for
        two = learner.q_net.unstacked()
        target_two = learner.target_net.unstacked()
        online_next = two(b.next_obs) if double else None
        target = td_target(b.rewards, b.terminated, 0.9, target_two(b.next_obs), online_next,
                           b.next_mask)
        q, r = taken_q(two(b.obs), b.actions), taken_q(two.reward(b.obs), b.actions)
        huber = torch.nn.functional.smooth_l1_loss
        expected = (huber(q, target, reduction="none") + huber(r, b.rewards, reduction="none"))
    assert fast.item() == pytest.approx(expected.mean().item(), rel=1e-5)


def test_grouped_agent_resumes_and_loads_a_checkpoint_of_two_networks():
    learner = demo_like_agent(policy_average=0.5)
    for seed in range(3):
        learner.update(replay_batch(seed))
    state = learner.state_dict()
    assert "reward.head.0.weight" in state["q_net"]
    resumed = demo_like_agent(policy_average=0.5)
    resumed.load_state_dict(state)
    obs = observations(9)
    np.testing.assert_array_equal(resumed.greedy_policy().scores(obs),
                                  learner.greedy_policy().scores(obs))
    # A checkpoint written before the grouping: two networks, Adam over their 12 tensors.
    two = learner.q_net.unstacked()
    old_adam = torch.optim.Adam(two.parameters(), lr=learner.config.lr)
    old_adam.zero_grad()
    two(tensors(obs)).pow(2).mean().backward()
    old_adam.step()
    older = {**state, "q_net": two.state_dict(), "optimizer": old_adam.state_dict()}
    resumed.load_state_dict(older)
    with torch.no_grad():
        torch.testing.assert_close(resumed.q_net(tensors(obs)), two(tensors(obs)), rtol=0,
                                   atol=1e-6)
    moments = resumed.optimizer.state_dict()["state"][0]["exp_avg"]  # the encoder weights
    first = next(iter(old_adam.state.values()))["exp_avg"]  # R's encoder weights
    torch.testing.assert_close(moments[0], first)
    assert resumed.update(replay_batch(7))["loss"] > 0


def test_grouped_agent_resumes_exactly_through_a_checkpoint_file(tmp_path):
    trained = demo_like_agent(policy_average=0.5)
    for seed in range(3):
        trained.update(replay_batch(seed))
    save_checkpoint(tmp_path / "latest.pt", {"agent": trained.state_dict()})
    resumed = demo_like_agent(policy_average=0.5)
    resumed.load_state_dict(load_checkpoint(tmp_path / "latest.pt")["agent"])
    for seed in range(3, 6):
        trained.update(replay_batch(seed))
        resumed.update(replay_batch(seed))
    want, got = trained.state_dict(), resumed.state_dict()
    for part in ("q_net", "target_net", "average"):
        for key, tensor in want[part].items():
            assert torch.equal(got[part][key], tensor), f"{part}.{key}"
