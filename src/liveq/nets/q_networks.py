"""Q-networks: a plain MLP head for Box observations, an item-conditioned one for candidates.

The live set of streamers changes every step, so for the LiveStream dict observation a
fixed output unit per streamer is wrong. `CandidateQNetwork` scores each candidate with
one shared MLP over `concat(viewer_encoder(viewer), candidate_features)`:

    q[b, k] = head(concat(viewer_encoder(viewer[b]), candidates[b, k]))

Dueling heads (Wang et al. 2016) split Q into a state value and advantages. For the MLP
the standard form, Q = V(s) + A(s, a) - mean_a' A(s, a'). For candidates the head above
becomes the advantage and a value head reads the viewer's code:

    q[b, k] = V(viewer[b]) + A[b, k] - sum_j mask[b, j] A[b, j] / sum_j mask[b, j]

The mean runs over the VALID candidates only (all of them when the observation has no
mask; 0 when none is valid): padding and offline streamers are not actions, so their
advantages must not shift the values of the real ones, and V(s) is then the mean Q over
the actions the agent can actually take.

Networks return raw Q-values; masking the choice belongs to the agent (`masked_q`).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from liveq.core.config import ConfigError
from liveq.core.errors import CheckpointError
from liveq.core.memory import GIB, available_bytes
from liveq.policies.base import Obs

MASKED_Q = -1e9  # stands in for the Q-value of a candidate that may not be chosen
CANDIDATE_KEYS = ("viewer", "candidates")


def mlp(in_dim: int, hidden: Sequence[int], out_dim: int) -> nn.Sequential:
    """`in_dim -> hidden... -> out_dim` with ReLU between layers, linear output."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_dim, width), nn.ReLU()]
        in_dim = width
    layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)


def dueling_q(value: torch.Tensor, advantages: torch.Tensor,
              mask: torch.Tensor | None = None) -> torch.Tensor:
    """`value + advantages - mean(advantages)`: value (batch,), advantages (batch, n), the
    mean over the allowed entries of `mask` (batch, n) bool, or over all when None."""
    if mask is None:
        mean = advantages.mean(dim=1)
    else:
        allowed = mask.to(advantages.dtype)
        mean = (advantages * allowed).sum(dim=1) / allowed.sum(dim=1).clamp(min=1.0)
    return value.unsqueeze(1) + advantages - mean.unsqueeze(1)


class MLPQNetwork(nn.Module):
    """Q-values for every discrete action from a flat observation; with `dueling`, a shared
    trunk feeds a value and an advantage layer."""

    def __init__(self, obs_dim: int, n_actions: int, hidden: Sequence[int],
                 dueling: bool = False):
        super().__init__()
        self.dueling = dueling
        if not dueling:
            self.net = mlp(obs_dim, hidden, n_actions)
            return
        self.trunk = mlp(obs_dim, hidden[:-1], hidden[-1])
        self.value = nn.Linear(hidden[-1], 1)
        self.advantage = nn.Linear(hidden[-1], n_actions)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if not self.dueling:
            return self.net(obs)  # (batch, obs_dim) -> (batch, n_actions)
        features = F.relu(self.trunk(obs))  # (batch, hidden[-1])
        return dueling_q(self.value(features).squeeze(1), self.advantage(features))

    def taken(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """`forward(obs)[i, actions[i]]`, shape (batch,): one output layer yields every
        action's value at once, so this is the forward pass and a gather."""
        return self(obs).gather(1, actions.unsqueeze(1)).squeeze(1)


class CandidateQNetwork(nn.Module):
    """Item-conditioned Q-values: one shared head scores each candidate for the viewer;
    with `dueling` that score is the advantage and `value` reads the viewer's code."""

    def __init__(self, viewer_dim: int, cand_dim: int, hidden: Sequence[int],
                 dueling: bool = False):
        super().__init__()
        if not hidden:
            raise ConfigError("hidden sizes: the candidate Q-network needs at least one layer")
        self.viewer_encoder = nn.Sequential(nn.Linear(viewer_dim, hidden[0]), nn.ReLU())
        self.head = mlp(hidden[0] + cand_dim, hidden[1:], 1)
        self.value = mlp(hidden[0], hidden[1:], 1) if dueling else None

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        viewer_code = self.viewer_encoder(obs["viewer"])  # (batch, hidden)
        scores = self.candidate_scores(viewer_code, obs["candidates"])  # (batch, K)
        if self.value is None:
            return scores
        return dueling_q(self.value(viewer_code).squeeze(1), scores, obs.get("mask"))

    def taken(self, obs: dict[str, torch.Tensor], actions: torch.Tensor) -> torch.Tensor:
        """`forward(obs)[i, actions[i]]`, shape (batch,), the head run on the chosen
        candidate of each row only (a K-th of the work, forward and backward: a TD loss
        reads one Q-value per row). Dueling reads every advantage for the mean, so it runs
        the whole forward pass. Equal to the gather of `forward` up to float32 rounding."""
        if self.value is not None:
            return self(obs).gather(1, actions.unsqueeze(1)).squeeze(1)
        viewer_code = self.viewer_encoder(obs["viewer"])  # (batch, hidden)
        rows = torch.arange(len(actions))
        chosen = obs["candidates"][rows, actions].unsqueeze(1)  # (batch, 1, cand_dim)
        return self.candidate_scores(viewer_code, chosen).squeeze(1)

    def candidate_scores(self, viewer_code: torch.Tensor,
                         candidates: torch.Tensor) -> torch.Tensor:
        """The shared head on every (viewer, candidate) pair: (batch, K); candidates
        (batch, K, cand_dim)."""
        # The head's first layer on concat(viewer_code, candidate) splits into a viewer part,
        # computed once per row, plus a candidate part: same function, K times less work.
        first, width = self.head[0], viewer_code.shape[1]
        from_viewer = F.linear(viewer_code, first.weight[:, :width], first.bias)  # (batch, h)
        from_candidates = F.linear(candidates, first.weight[:, width:])  # (batch, K, h)
        # In place on fresh (batch, K, h) outputs, which no backward needs: the same values
        # without allocating and streaming a second copy of the largest activation.
        hidden = from_candidates.add_(from_viewer.unsqueeze(1))
        for layer in itertools.islice(self.head, 1, None):  # head[1:] would build a module
            hidden = hidden.relu_() if isinstance(layer, nn.ReLU) else layer(hidden)
        return hidden.squeeze(-1)  # (batch, K)


TRAINING_COPIES = 5  # online and target weights, gradients, Adam's two moments


def check_network_memory(in_dim: int, hidden: Sequence[int], out_dim: int) -> None:
    """Refuse `hidden_sizes` whose training state cannot fit in the memory available now."""
    widths = [in_dim, *hidden, out_dim]
    params = sum(a * b + b for a, b in itertools.pairwise(widths))
    need, free = 4 * TRAINING_COPIES * params, available_bytes()
    if free is not None and need > free:
        raise ConfigError(f"hidden_sizes {list(hidden)}: a network of {params:,} parameters "
                          f"needs about {need / GIB:.1f} GiB to train (weights, target, "
                          f"gradients, Adam state), but only {free / GIB:.1f} GiB is "
                          "available; use narrower layers")


def make_q_network(obs_space: gym.Space, n_actions: int, hidden: Sequence[int],
                   dueling: bool = False) -> nn.Module:
    """The Q-network that fits `obs_space` (single-env space, not batched), with a
    dueling head when asked."""
    if isinstance(obs_space, gym.spaces.Box):
        check_network_memory(int(np.prod(obs_space.shape)), hidden, n_actions)
        if len(obs_space.shape) != 1:
            raise ConfigError(f"DQN needs a flat Box observation, got shape {obs_space.shape}")
        return MLPQNetwork(obs_space.shape[0], n_actions, hidden, dueling)
    if isinstance(obs_space, gym.spaces.Dict):
        missing = [k for k in CANDIDATE_KEYS if k not in obs_space.spaces]
        if missing:
            raise ConfigError(f"DQN dict observation lacks keys {missing}")
        viewer_dim = obs_space["viewer"].shape[0]
        n_candidates, cand_dim = obs_space["candidates"].shape
        if n_candidates != n_actions:
            raise ConfigError(
                f"{n_candidates} candidates in the observation but {n_actions} actions"
            )
        check_network_memory(viewer_dim + cand_dim, hidden, 1)
        return CandidateQNetwork(viewer_dim, cand_dim, hidden, dueling)
    raise ConfigError(f"DQN cannot read observations of type {type(obs_space).__name__}")


def obs_to_tensor(obs: Obs) -> torch.Tensor | dict[str, torch.Tensor]:
    """Batched numpy observation -> float32 tensors (the dict's mask becomes bool)."""
    if isinstance(obs, dict):
        out = {k: torch.as_tensor(np.asarray(obs[k]), dtype=torch.float32) for k in CANDIDATE_KEYS}
        if "mask" in obs:
            out["mask"] = torch.as_tensor(np.asarray(obs["mask"])).bool()
        return out
    return torch.as_tensor(np.asarray(obs), dtype=torch.float32)


def masked_q(q_values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """`q_values` (batch, n_actions) with disallowed entries set to `MASKED_Q`."""
    if mask is None:
        return q_values
    return q_values.masked_fill(~mask, MASKED_Q)


def load_weights(module: nn.Module, state: dict[str, torch.Tensor], name: str) -> None:
    """`module.load_state_dict(state)`, or a one-line `CheckpointError` naming the first
    missing, unexpected or differently shaped tensor (as `name.key`) and both shapes."""
    own = module.state_dict()
    missing = [key for key in own if key not in state]
    extra = [key for key in state if key not in own]
    if missing or extra:
        raise CheckpointError(f"{name}: the saved network has other layers than this config "
                              f"builds (missing {missing}, unexpected {extra})")
    for key, tensor in own.items():
        saved = state[key]
        if tuple(saved.shape) != tuple(tensor.shape):
            raise CheckpointError(f"{name}.{key}: saved shape {tuple(saved.shape)}, this "
                                  f"config builds {tuple(tensor.shape)} (were hidden_sizes "
                                  "changed after training?)")
    module.load_state_dict(state)
