"""The numpy forward pass the service scores with gives torch's scores (to 1e-6 of their
scale) and the same ranking, plain and dueling; other networks keep torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from liveq.algos.dqn import GreedyQPolicy
from liveq.nets.decomposed import RewardFutureQNetwork
from liveq.nets.grouped import GroupedRewardFutureQNetwork
from liveq.nets.q_networks import CandidateQNetwork, MLPQNetwork
from liveq.serving.fast_scores import fast_scores


def _observations(rng: np.random.Generator, batch: int, k: int, viewer_dim: int,
                  cand_dim: int) -> dict[str, np.ndarray]:
    mask = (rng.random((batch, k)) < 0.8).astype(np.int8)
    mask[:, 0] = 1
    return {"viewer": rng.normal(0, 2, (batch, viewer_dim)).astype(np.float32),
            "candidates": rng.normal(0, 2, (batch, k, cand_dim)).astype(np.float32),
            "mask": mask}


def _candidate_net(hidden: list[int], dueling: bool, reward_head: bool | str) -> torch.nn.Module:
    """A CandidateQNetwork, or with `reward_head` the sum of two of them (`"grouped"`: run
    as one, as the demo config trains them)."""
    if not reward_head:
        return CandidateQNetwork(17, 13, hidden, dueling)
    if reward_head == "grouped":
        return GroupedRewardFutureQNetwork(CandidateQNetwork(17, 13, hidden),
                                           CandidateQNetwork(17, 13, hidden))
    return RewardFutureQNetwork(CandidateQNetwork(17, 13, hidden, dueling),
                                CandidateQNetwork(17, 13, hidden, dueling))


@pytest.mark.parametrize(("hidden", "dueling", "reward_head"), [
    ([64, 64], False, False), ([64, 64], True, False), ([32, 16, 8], False, False),
    ([24], True, False), ([64, 64], False, True), ([24], True, True),
    ([64, 64], False, "grouped"), ([32, 16, 8], False, "grouped")])
def test_numpy_scores_equal_torch_scores(hidden, dueling, reward_head):
    torch.manual_seed(3)
    net = _candidate_net(hidden, dueling, reward_head).requires_grad_(False)
    for p in net.parameters():  # weights of a trained net's size, not init's
        p.mul_(3.0)
    greedy = GreedyQPolicy(net, 16)
    scorer = fast_scores(greedy)
    assert scorer != greedy.scores  # the numpy path was taken
    rng = np.random.default_rng(0)
    for batch in (1, 1, 7):
        obs = _observations(rng, batch, 16, 17, 13)
        want, got = greedy.scores(obs), scorer(obs)
        assert got.shape == want.shape == (batch, 16)
        np.testing.assert_array_equal(np.isneginf(got), obs["mask"] == 0)
        np.testing.assert_array_equal(np.isneginf(want), obs["mask"] == 0)
        finite = np.isfinite(want)
        scale = max(1.0, float(np.abs(want[finite]).max()))  # float32 rounds relatively
        np.testing.assert_allclose(got[finite], want[finite], rtol=0, atol=1e-6 * scale)
        np.testing.assert_array_equal(np.argsort(-got, axis=1, kind="stable"),
                                      np.argsort(-want, axis=1, kind="stable"))


def test_other_networks_keep_the_policys_own_scores():
    greedy = GreedyQPolicy(MLPQNetwork(5, 3, [8]), 3)
    assert fast_scores(greedy) == greedy.scores

    class Wrapped(CandidateQNetwork):
        pass

    wrapped = GreedyQPolicy(Wrapped(4, 3, [8]), 16)
    assert fast_scores(wrapped) == wrapped.scores
