"""State-value networks (critics) for actor-critic learners.

For a flat Box observation the critic is an MLP. For the LiveStream dict observation a
state is a viewer AND the set of streamers on offer, so the critic reads both: the
viewer's code from its own encoder, concatenated with the mean of the VALID candidates'
features (padding and offline streamers are not part of the state's choices):

    v[b] = head(concat(viewer_encoder(viewer[b]), mean_{k: mask[b, k]} candidates[b, k]))

The actor is an item-conditioned scorer, the Q-network's shape (`liveq.nets.q_networks`):
its per-candidate outputs are read as logits.
"""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from liveq.core.config import ConfigError
from liveq.nets.q_networks import CANDIDATE_KEYS, check_network_memory, mlp


class CandidateValueNetwork(nn.Module):
    """V(viewer, valid candidates) for the LiveStream dict observation."""

    def __init__(self, viewer_dim: int, cand_dim: int, hidden: Sequence[int]):
        super().__init__()
        self.viewer_encoder = nn.Sequential(nn.Linear(viewer_dim, hidden[0]), nn.ReLU())
        self.head = mlp(hidden[0] + cand_dim, hidden[1:], 1)

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        candidates = obs["candidates"]  # (batch, K, cand_dim)
        mask = obs.get("mask")
        if mask is None:
            pooled = candidates.mean(dim=1)
        else:
            weights = mask.to(candidates.dtype).unsqueeze(-1)  # (batch, K, 1)
            pooled = (candidates * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)
        code = self.viewer_encoder(obs["viewer"])
        return self.head(torch.cat([code, pooled], dim=1)).squeeze(1)  # (batch,)


class MLPValueNetwork(nn.Module):
    """V(s) from a flat observation."""

    def __init__(self, obs_dim: int, hidden: Sequence[int]):
        super().__init__()
        self.net = mlp(obs_dim, hidden, 1)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs).squeeze(1)


def make_value_network(obs_space: gym.Space, hidden: Sequence[int]) -> nn.Module:
    """The critic that fits `obs_space` (single-env space): `(batch,)` state values."""
    if not hidden:
        raise ConfigError("hidden_sizes: the value network needs at least one layer")
    if isinstance(obs_space, gym.spaces.Box):
        if len(obs_space.shape) != 1:
            raise ConfigError(f"the value network needs a flat Box observation, got shape "
                              f"{obs_space.shape}")
        check_network_memory(int(np.prod(obs_space.shape)), hidden, 1)
        return MLPValueNetwork(obs_space.shape[0], hidden)
    if isinstance(obs_space, gym.spaces.Dict):
        missing = [k for k in CANDIDATE_KEYS if k not in obs_space.spaces]
        if missing:
            raise ConfigError(f"the value network's dict observation lacks keys {missing}")
        viewer_dim = obs_space["viewer"].shape[0]
        cand_dim = obs_space["candidates"].shape[1]
        check_network_memory(viewer_dim + cand_dim, hidden, 1)
        return CandidateValueNetwork(viewer_dim, cand_dim, hidden)
    raise ConfigError(f"the value network cannot read observations of type "
                      f"{type(obs_space).__name__}")
