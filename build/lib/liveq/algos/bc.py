"""Behaviour cloning: a Q-network read as logits, trained to predict the logged action.

    L = mean( -log softmax_{a' valid}(Q(s, .))[a_logged] )
      = mean( logsumexp_{a' valid} Q(s, a') - Q(s, a_logged) )

No reward and no bootstrap: the greedy policy is the behaviour's most frequent choice
in each state (its mode, not its exploration). BC learns only from a logged buffer
(`liveq.train.offline`); trained online it would clone its own exploration. The loss is
computed in the second form above, the same expression as the CQL penalty
(`liveq.algos.offline_loss`), so its numbers match the conservative learners' term
exactly; `bc_cross_entropy` is the same value up to rounding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from liveq.algos.dqn import (
    GreedyQPolicy,
    discrete_actions,
    gradient_step,
    seeded_q_network,
    taken_q,
    to_q_batch,
)
from liveq.algos.offline_loss import cql_penalty
from liveq.buffers.replay import ReplayBatch
from liveq.core.config import require
from liveq.nets.q_networks import load_weights


@dataclass(kw_only=True)
class BCConfig:
    """Network and optimiser of behaviour cloning."""

    lr: float = 1e-3
    """Adam learning rate."""
    batch_size: int = 64
    """Transitions per gradient step."""
    max_grad_norm: float = 10.0
    """Clip the gradient's global norm to this; 0 disables clipping."""
    hidden_sizes: list[int] = field(default_factory=lambda: [256, 256])
    """Hidden layer widths (for candidates: the first is the viewer encoder's width)."""

    def validate(self) -> None:
        require(self.lr > 0, f"lr must be positive, got {self.lr}")
        require(self.batch_size >= 1, f"batch_size must be at least 1, got {self.batch_size}")
        require(self.max_grad_norm >= 0, f"max_grad_norm must be >= 0, got {self.max_grad_norm}")
        require(len(self.hidden_sizes) >= 1 and min(self.hidden_sizes) >= 1,
                f"hidden_sizes must be a non-empty list of positive widths, got "
                f"{self.hidden_sizes}")


class BCAgent:
    """A Q-network (DQN's architecture) trained by cross-entropy on logged actions."""

    def __init__(self, obs_space: gym.Space, action_space: gym.Space, config: BCConfig,
                 seed: int | np.random.SeedSequence):
        self.config = config
        self.n_actions = discrete_actions(action_space, "behaviour cloning")
        seq = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
        init_seq, _ = seq.spawn(2)  # DQN's split: the same seed gives DQN's initial weights
        self.q_net = seeded_q_network(obs_space, self.n_actions, config.hidden_sizes, init_seq)
        self.optimizer = torch.optim.Adam(self.q_net.parameters(), lr=config.lr)
        self.greedy = GreedyQPolicy(self.q_net, self.n_actions)
        self.updates = 0  # gradient steps taken

    def greedy_policy(self, frozen: bool = False) -> GreedyQPolicy:
        """The most likely logged action among the allowed ones (propensity 1): a live view
        of the network, or with `frozen` a snapshot that later updates leave alone."""
        return self.greedy.freeze() if frozen else self.greedy

    def update(self, batch: ReplayBatch) -> dict[str, float]:
        """One gradient step on `batch`: the loss and the mean logit of the logged actions."""
        b = to_q_batch(batch)
        logits = self.q_net(b.obs)  # (batch, n_actions)
        loss = cql_penalty(logits, b.mask, b.actions)
        gradient_step(self.optimizer, self.q_net.parameters(), loss, self.config.max_grad_norm)
        self.updates += 1
        return {"loss": loss.item(), "q_mean": taken_q(logits, b.actions).mean().item()}

    def state_dict(self) -> dict[str, Any]:
        """Network, optimizer and counter, loadable with weights_only=True."""
        return {"q_net": self.q_net.state_dict(), "optimizer": self.optimizer.state_dict(),
                "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        load_weights(self.q_net, state["q_net"], "q_net")
        self.optimizer.load_state_dict(state["optimizer"])
        self.updates = int(state["updates"])
