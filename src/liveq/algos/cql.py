"""Conservative Q-learning (CQL(H), Kumar et al. 2020) on top of DQN, for offline learning.

The loss is DQN's TD loss plus the conservative penalty over the valid candidates of
each sampled state (`liveq.algos.offline_loss.cql_penalty`):

    L = huber(Q(s, a) - y) + cql_alpha * mean( logsumexp_{a' valid} Q(s, a') - Q(s, a) )

The penalty pushes down the Q-values of actions the data never took while pushing up
the logged one, so the greedy policy stays near the data: what a learner needs when it
only ever sees a logged buffer (`liveq.train.offline`). With `gamma = 0` the TD part is
immediate-reward regression: the conservative contextual bandit (`BanditConfig`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from liveq.algos.dqn import DQNAgent, DQNConfig, QBatch
from liveq.algos.offline_loss import cql_penalty
from liveq.core.config import require


@dataclass(kw_only=True)
class CQLConfig(DQNConfig):
    """DQN's hyper-parameters and the weight of the conservative penalty."""

    cql_alpha: float = 0.1
    """Weight of the conservative penalty; larger keeps the policy closer to the data."""

    def validate(self) -> None:
        super().validate()
        require(self.cql_alpha > 0, f"cql_alpha must be > 0, got {self.cql_alpha} (without "
                "the penalty this is plain DQN: use agent name dqn)")


@dataclass(kw_only=True)
class BanditConfig(CQLConfig):
    """CQL with gamma 0: a conservative contextual bandit on the immediate reward."""

    PINNED: ClassVar[dict[str, float]] = {"gamma": 0.0}
    gamma: float = 0.0
    """Always 0: the bandit values only the immediate reward."""

    def validate(self) -> None:
        super().validate()
        require(self.gamma == 0.0, f"gamma must be 0 for the bandit, got {self.gamma} (use "
                "agent name cql to discount later rewards)")


class CQLAgent(DQNAgent):
    """DQN whose loss adds `cql_alpha` times the conservative penalty."""

    config: CQLConfig

    def loss(self, q_values: torch.Tensor, b: QBatch) -> tuple[torch.Tensor, dict[str, float]]:
        td, stats = super().loss(q_values, b)
        penalty = cql_penalty(q_values, b.mask, b.actions)
        loss = td + self.config.cql_alpha * penalty
        return loss, {**stats, "loss": loss.item(), "td_loss": stats["loss"],
                      "cql_penalty": penalty.item()}
