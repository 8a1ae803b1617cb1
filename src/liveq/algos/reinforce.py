"""REINFORCE with the top-K off-policy correction (Chen et al., WSDM 2019), from logs.

A softmax policy pi over the live candidates (`liveq.nets.policy_networks`: a viewer
encoder and an item head, so the live set may change every step; masked candidates get
probability exactly 0) learns from a behaviour policy's log, never by acting:

    L = - mean  w * lambda_K * R_t * log pi(a_t | s_t)  -  entropy * H(pi(. | s_t))

R_t is the discounted return of the rest of the logged session
(`liveq.buffers.session_returns`: `train_offline` wraps the buffer through
`prepare_buffer`), w = pi/beta capped at `weight_cap` and self-normalised over the batch,
lambda_K = K (1 - pi)^(K-1) (`liveq.algos.topk_correction`). beta is the logged
propensity (`behaviour: logged`, when the log carries it: `SessionBatch.propensities`)
or a learnt softmax head on the policy's state code with its gradient blocked into the
shared encoder (`behaviour: learnt`, trained by cross-entropy on the logged actions).

Serving: `greedy_policy()` ranks by pi (deterministic top-`slate_size`);
`sampling_policy()` draws as the paper serves, but WITHOUT replacement: the slate is a
Plackett-Luce draw from pi (`liveq.policies.explore.Softmax` at temperature 1), so its
items are distinct and `slate_probability` is the exact product of sequential choices.
The paper draws K times with replacement; lambda_K is derived for that draw, and is
used here unchanged. On a world with `slate_size` L the action is the slate of L items;
each logged item is one term of the loss with the slate's return, and its beta is the
behaviour's probability of that item averaged over the ranks.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from liveq.algos.dqn import GreedyQPolicy, gradient_step
from liveq.algos.topk_correction import (
    CORRECTIONS,
    corrected_reinforce_loss,
    entropy,
    policy_log_probs,
)
from liveq.buffers.replay import ReplayBatch, ReplayBuffer
from liveq.buffers.session_returns import SessionBatch, SessionReturnBuffer
from liveq.core.config import ConfigError, require
from liveq.nets.policy_networks import seeded_policy_network
from liveq.nets.q_networks import load_weights, obs_to_tensor
from liveq.policies.explore import Softmax

BEHAVIOURS = ("logged", "learnt")


@dataclass(kw_only=True)
class ReinforceConfig:
    """Hyper-parameters of top-K off-policy corrected REINFORCE (offline only)."""

    top_k: int = 1
    """K of the top-K correction: how many items the policy recommends at once."""
    correction: str = "topk"
    """none (plain REINFORCE on the log), importance (pi/beta) or topk (pi/beta and the
    top-K multiplier; the same as importance when top_k is 1)."""
    weight_cap: float = 10.0
    """Cap c on the importance weight pi/beta; 0 = no cap."""
    normalise: bool = True
    """Divide the (capped) weights by their batch mean (normalised importance sampling)."""
    behaviour: str = "learnt"
    """beta: logged (the log's propensities; the log must carry them) or learnt (a
    softmax head trained on the logged actions, its gradient blocked into the encoder)."""
    gamma: float = 0.9
    """Discount of the return over the rest of the logged session."""
    lr: float = 1e-3
    """Adam learning rate (policy and behaviour heads)."""
    entropy: float = 0.0
    """Weight of the entropy bonus on pi."""
    batch_size: int = 256
    """Logged decisions per gradient step."""
    max_grad_norm: float = 10.0
    """Clip the gradient's global norm to this; 0 disables clipping."""
    hidden_sizes: list[int] = field(default_factory=lambda: [256, 256])
    """Hidden layer widths (for candidates: the first is the viewer encoder's width)."""

    def validate(self) -> None:
        require(self.top_k >= 1, f"top_k must be at least 1, got {self.top_k}")
        require(self.correction in CORRECTIONS, f"correction: unknown '{self.correction}', "
                f"expected one of {list(CORRECTIONS)}")
        require(self.weight_cap >= 0, f"weight_cap must be >= 0 (0 = no cap), got "
                f"{self.weight_cap}")
        require(self.behaviour in BEHAVIOURS, f"behaviour: unknown '{self.behaviour}', "
                f"expected one of {list(BEHAVIOURS)}")
        require(0.0 <= self.gamma <= 1.0, f"gamma must be in [0, 1], got {self.gamma}")
        require(self.lr > 0, f"lr must be positive, got {self.lr}")
        require(self.entropy >= 0, f"entropy must be >= 0, got {self.entropy}")
        require(self.batch_size >= 1, f"batch_size must be at least 1, got {self.batch_size}")
        require(self.max_grad_norm >= 0, f"max_grad_norm must be >= 0, got {self.max_grad_norm}")
        require(len(self.hidden_sizes) >= 1 and min(self.hidden_sizes) >= 1,
                f"hidden_sizes must be a non-empty list of positive widths, got "
                f"{self.hidden_sizes}")


def policy_actions(action_space: gym.Space) -> tuple[int, int]:
    """(candidates, slate size) of a Discrete space or a slate space of equal ranks."""
    if isinstance(action_space, gym.spaces.Discrete):
        return int(action_space.n), 1
    if isinstance(action_space, gym.spaces.MultiDiscrete) and action_space.nvec.ndim == 1 \
            and len(set(action_space.nvec.tolist())) == 1:
        return int(action_space.nvec[0]), len(action_space.nvec)
    raise ConfigError(f"REINFORCE needs a Discrete action space or a slate of equal ranks, "
                      f"got {action_space}")


class RankedPolicy(GreedyQPolicy):
    """Deterministic top-`slate_size` candidates by pi's logits."""

    def __init__(self, net: torch.nn.Module, n_actions: int, slate_size: int):
        super().__init__(net, n_actions)
        self.slate_size = slate_size

    def freeze(self) -> RankedPolicy:
        net = copy.deepcopy(self.q_net).requires_grad_(False)
        return RankedPolicy(net, self.n_actions, self.slate_size)


class ReinforceAgent:
    """The two-headed policy network, its optimiser and the sampling RNG."""

    def __init__(self, obs_space: gym.Space, action_space: gym.Space, config: ReinforceConfig,
                 seed: int | np.random.SeedSequence):
        self.config = config
        self.n_actions, self.slate_size = policy_actions(action_space)
        if config.top_k > self.n_actions:
            raise ConfigError(f"top_k = {config.top_k} exceeds the {self.n_actions} "
                              "candidates the policy chooses from")
        seq = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
        init_seq, act_seq = seq.spawn(2)
        self.net = seeded_policy_network(obs_space, self.n_actions, config.hidden_sizes,
                                         init_seq)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=config.lr)
        self.rng = np.random.default_rng(act_seq)
        self.greedy = RankedPolicy(self.net, self.n_actions, self.slate_size)
        self.updates = 0  # gradient steps taken

    def greedy_policy(self, frozen: bool = False) -> RankedPolicy:
        """The top items by pi (propensity 1): live, or with `frozen` a snapshot."""
        return self.greedy.freeze() if frozen else self.greedy

    def sampling_policy(self, frozen: bool = False,
                        rng: np.random.Generator | None = None) -> Softmax:
        """pi itself: slates drawn from pi without replacement, with exact propensities."""
        return Softmax(self.greedy_policy(frozen), 1.0, rng or self.rng)

    def prepare_buffer(self, buffer: ReplayBuffer | SessionReturnBuffer,
                       propensities: np.ndarray | None = None) -> SessionReturnBuffer:
        """The logged buffer as sessions with discounted returns (`train_offline` calls
        this before sampling); `propensities` per row when the log has them. A buffer
        prepared already is returned as it is."""
        if isinstance(buffer, SessionReturnBuffer):
            return buffer
        return SessionReturnBuffer(buffer, self.config.gamma, propensities)

    def update(self, batch: SessionBatch | ReplayBatch) -> dict[str, float]:
        """One gradient step. A plain `ReplayBatch` counts its rewards as the returns (one
        step; n-step batches: their n-step return) and carries no propensities."""
        if isinstance(batch, ReplayBatch):
            batch = SessionBatch(batch.obs, batch.actions, batch.rewards, None)
        c = self.config
        obs = obs_to_tensor(batch.obs)
        mask = obs.get("mask") if isinstance(obs, dict) else None
        pi_logits, beta_logits = self.net.both_logits(obs)
        log_probs = policy_log_probs(pi_logits, mask)
        beta_log_probs = policy_log_probs(beta_logits, mask)
        actions = torch.as_tensor(np.asarray(batch.actions)).long().reshape(len(pi_logits), -1)
        loss, stats = corrected_reinforce_loss(
            log_probs, actions, torch.as_tensor(batch.returns, dtype=torch.float32),
            self._beta_taken(batch, beta_log_probs, actions), correction=c.correction,
            top_k=c.top_k, cap=c.weight_cap, normalise=c.normalise, mask=mask)
        ent = entropy(log_probs, mask)
        loss = loss - c.entropy * ent
        behaviour_loss = self._behaviour_loss(beta_log_probs, actions, mask)
        gradient_step(self.optimizer, self.net.parameters(), loss + behaviour_loss,
                      c.max_grad_norm)
        self.updates += 1
        return {**stats, "loss": loss.item(), "entropy": ent.item(),
                "behaviour_loss": behaviour_loss.item()}

    def _beta_taken(self, batch: SessionBatch, beta_log_probs: torch.Tensor,
                    actions: torch.Tensor) -> torch.Tensor | None:
        """beta of each logged item: the logged propensities or the learnt head's."""
        c = self.config
        if c.correction == "none":
            return None
        if c.behaviour == "learnt":
            return beta_log_probs.detach().gather(1, actions).exp()
        if batch.propensities is None:
            raise ConfigError("behaviour = logged needs the behaviour's propensities, and "
                              "this log has none; use behaviour: learnt")
        return torch.as_tensor(np.asarray(batch.propensities),
                               dtype=torch.float32).reshape(actions.shape)

    def _behaviour_loss(self, beta_log_probs: torch.Tensor, actions: torch.Tensor,
                        mask: torch.Tensor | None) -> torch.Tensor:
        """Cross-entropy of the logged items under the beta head (0 unless learnt)."""
        if self.config.behaviour != "learnt" or self.config.correction == "none":
            return beta_log_probs.new_zeros(())
        valid = torch.ones_like(actions, dtype=torch.bool) if mask is None \
            else mask.gather(1, actions)
        logp = beta_log_probs.gather(1, actions)
        return -(logp * valid).sum() / valid.sum().clamp(min=1)

    def behaviour_probabilities(self, obs: Any) -> np.ndarray:
        """The learnt beta over the candidates `(n, K)`, 0 on masked ones."""
        tensors = obs_to_tensor(obs)
        mask = tensors.get("mask") if isinstance(tensors, dict) else None
        with torch.no_grad():
            return policy_log_probs(self.net.both_logits(tensors)[1], mask).exp().numpy()

    def state_dict(self) -> dict[str, Any]:
        """Network, optimizer, counter and RNG state, loadable with weights_only=True."""
        return {"net": self.net.state_dict(), "optimizer": self.optimizer.state_dict(),
                "updates": self.updates, "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        load_weights(self.net, state["net"], "net")
        self.optimizer.load_state_dict(state["optimizer"])
        self.updates = int(state["updates"])
        self.rng.bit_generator.state = state["rng"]
