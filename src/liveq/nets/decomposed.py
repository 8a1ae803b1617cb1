"""A Q-network split into an immediate-reward part and a future-value part.

    Q(s, a) = R(s, a) + F(s, a)

`R` and `F` are two networks of the same shape (`liveq.nets.q_networks`). The learner
fits the sum to its TD target as usual and, beside that, regresses `R` on the immediate
reward, exactly as the myopic twin (gamma 0) regresses its whole network. `F` is then left
to carry only what comes after this step. On a world where later rewards hardly depend on
today's choice, the TD target's noise lands in `F` and the ranking by `R` (as good as the
myopic twin's) survives; where they do depend, `F` adds it. For two candidate networks
the learner builds `liveq.nets.grouped.GroupedRewardFutureQNetwork` instead: the same sum,
run as one network.
"""

from __future__ import annotations

import torch
from torch import nn


class RewardFutureQNetwork(nn.Module):
    """`reward(obs) + future(obs)`; both map a batch of observations to (batch, n_actions)."""

    def __init__(self, reward: nn.Module, future: nn.Module):
        super().__init__()
        self.reward = reward
        self.future = future

    def forward(self, obs: torch.Tensor | dict[str, torch.Tensor]) -> torch.Tensor:
        return self.reward(obs) + self.future(obs)

    def reward_q(self, obs: torch.Tensor | dict[str, torch.Tensor]) -> torch.Tensor:
        """R's Q-values (batch, n_actions)."""
        return self.reward(obs)

    def taken_parts(self, obs: torch.Tensor | dict[str, torch.Tensor],
                    actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`(R(s, a), F(s, a))` of each row's action, each (batch,): the learner's two losses
        read both from this one pass (their sum is Q)."""
        return self.reward.taken(obs, actions), self.future.taken(obs, actions)

    def taken(self, obs: torch.Tensor | dict[str, torch.Tensor],
              actions: torch.Tensor) -> torch.Tensor:
        """`forward(obs)[i, actions[i]]`, shape (batch,)."""
        reward, future = self.taken_parts(obs, actions)
        return reward + future
