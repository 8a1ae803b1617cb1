"""Softmax policy networks with a second head for the behaviour policy.

The top-K off-policy correction (Chen et al., WSDM 2019, section 4.3) estimates the
behaviour policy beta with its own softmax head on the same state representation as the
policy pi, and blocks beta's gradient from flowing into that shared representation, so
learning beta does not change what pi sees:

    code   = encoder(state)
    pi     = softmax(pi_head(code))
    beta   = softmax(beta_head(stop_gradient(code)))

For the LiveStream dict observation both heads are item-conditioned like DQN's network
(`liveq.nets.q_networks.CandidateQNetwork`): a viewer encoder, then a shared MLP per head
scoring `concat(code, candidate)` for every candidate. For flat Box observations the
encoder is an MLP trunk and each head is one linear layer over the discrete actions.
`forward` gives pi's logits, so the network also serves as the scorer of a greedy policy
(`liveq.algos.dqn.GreedyQPolicy`); `behaviour_logits` gives beta's.
"""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from liveq.core.config import ConfigError
from liveq.nets.q_networks import CANDIDATE_KEYS, check_network_memory, mlp


def pair_scores(head: nn.Sequential, code: torch.Tensor,
                candidates: torch.Tensor) -> torch.Tensor:
    """`head(concat(code[b], candidates[b, k]))` for every pair: (batch, K).

    The first layer splits into a per-row part and a per-candidate part (K times less
    work than concatenating)."""
    first, width = head[0], code.shape[1]
    from_code = F.linear(code, first.weight[:, :width], first.bias)  # (batch, h)
    from_candidates = F.linear(candidates, first.weight[:, width:])  # (batch, K, h)
    return head[1:](from_candidates + from_code.unsqueeze(1)).squeeze(-1)


class CandidatePolicyNetwork(nn.Module):
    """pi and beta logits over the candidates of a LiveStream observation."""

    def __init__(self, viewer_dim: int, cand_dim: int, hidden: Sequence[int]):
        super().__init__()
        self.viewer_encoder = nn.Sequential(nn.Linear(viewer_dim, hidden[0]), nn.ReLU())
        self.head = mlp(hidden[0] + cand_dim, hidden[1:], 1)
        self.beta_head = mlp(hidden[0] + cand_dim, hidden[1:], 1)

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        return pair_scores(self.head, self.viewer_encoder(obs["viewer"]), obs["candidates"])

    def both_logits(self, obs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """pi's and beta's logits (batch, K); beta's gradient stops at the encoder."""
        code = self.viewer_encoder(obs["viewer"])
        return (pair_scores(self.head, code, obs["candidates"]),
                pair_scores(self.beta_head, code.detach(), obs["candidates"]))


class MLPPolicyNetwork(nn.Module):
    """pi and beta logits over discrete actions from a flat observation."""

    def __init__(self, obs_dim: int, n_actions: int, hidden: Sequence[int]):
        super().__init__()
        self.trunk = nn.Sequential(mlp(obs_dim, hidden[:-1], hidden[-1]), nn.ReLU())
        self.head = nn.Linear(hidden[-1], n_actions)
        self.beta_head = nn.Linear(hidden[-1], n_actions)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(obs))

    def both_logits(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        code = self.trunk(obs)
        return self.head(code), self.beta_head(code.detach())


def make_policy_network(obs_space: gym.Space, n_actions: int,
                        hidden: Sequence[int]) -> nn.Module:
    """The two-headed network that fits `obs_space` (single-env, not batched)."""
    if not hidden:
        raise ConfigError("hidden_sizes: the policy network needs at least one layer")
    if isinstance(obs_space, gym.spaces.Box) and len(obs_space.shape) == 1:
        check_network_memory(obs_space.shape[0], hidden, 2 * n_actions)
        return MLPPolicyNetwork(obs_space.shape[0], n_actions, hidden)
    if isinstance(obs_space, gym.spaces.Dict):
        missing = [k for k in CANDIDATE_KEYS if k not in obs_space.spaces]
        if missing:
            raise ConfigError(f"policy network: the dict observation lacks keys {missing}")
        n_candidates, cand_dim = obs_space["candidates"].shape
        if n_candidates != n_actions:
            raise ConfigError(f"{n_candidates} candidates in the observation but "
                              f"{n_actions} actions")
        check_network_memory(obs_space["viewer"].shape[0] + cand_dim, hidden, 2)
        return CandidatePolicyNetwork(obs_space["viewer"].shape[0], cand_dim, hidden)
    raise ConfigError(f"the policy network reads a flat Box or the LiveStream dict "
                      f"observation, got {obs_space} with shape "
                      f"{getattr(obs_space, 'shape', None)}")


def seeded_policy_network(obs_space: gym.Space, n_actions: int, hidden: Sequence[int],
                          seed: np.random.SeedSequence) -> nn.Module:
    """`make_policy_network` initialised from `seed`, leaving torch's global generator
    alone."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed.generate_state(1)[0]))
        return make_policy_network(obs_space, n_actions, hidden)
