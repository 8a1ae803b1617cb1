"""A Q-network split into an immediate-reward part and a future-value part.

    Q(s, a) = R(s, a) + F(s, a)

`R` and `F` are two networks of the same shape (`liveq.nets.q_networks`). The learner
fits the sum to its TD target as usual and, beside that, regresses `R` on the immediate
reward, exactly as the myopic twin (gamma 0) regresses its whole network. `F` is then left
to carry only what comes after this step. On a world where later rewards hardly depend on
today's choice, the TD target's noise lands in `F` and the ranking by `R` (as good as the
myopic twin's) survives; where they do depend, `F` adds it.
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

    def parts(self, obs: torch.Tensor | dict[str, torch.Tensor]
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """`(R(obs), F(obs))`, each (batch, n_actions): the learner needs R on its own too,
        and one pass of each network serves both."""
        return self.reward(obs), self.future(obs)


class SharedRewardFutureQNetwork(nn.Module):
    """`R + F` as two outputs of one network: `body` maps observations to (batch,
    n_actions, 2), R first. Both parts read the same hidden layers, so a pass costs what
    one plain Q-network's does, where `RewardFutureQNetwork` runs two networks."""

    def __init__(self, body: nn.Module):
        super().__init__()
        self.body = body

    def forward(self, obs: torch.Tensor | dict[str, torch.Tensor]) -> torch.Tensor:
        return self.body(obs).sum(dim=-1)

    def parts(self, obs: torch.Tensor | dict[str, torch.Tensor]
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """`(R(obs), F(obs))`, each (batch, n_actions), from one pass of the body."""
        reward, future = self.body(obs).unbind(dim=-1)
        return reward, future

    def reward(self, obs: torch.Tensor | dict[str, torch.Tensor]) -> torch.Tensor:
        """R(obs) alone, (batch, n_actions)."""
        return self.parts(obs)[0]
