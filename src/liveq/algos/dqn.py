"""Deep Q-learning (Mnih et al. 2015) with double Q-learning (van Hasselt et al. 2016).

Acting and learning are separate: `DQNAgent.act` is the behaviour policy
(`liveq.policies.explore.EpsilonGreedy` around the greedy Q policy),
`DQNAgent.greedy_policy()` the deterministic policy for evaluation and serving (a live
view, or with `frozen=True` a snapshot later updates leave alone), and
`DQNAgent.update(batch)` one gradient step on a replay batch:

    a*  = argmax_a' Q_online(s', a')         (double)   or   argmax_a' Q_target(s', a')
    y   = r + gamma * (1 - terminated) * Q_target(s', a*)
    L   = huber(Q_online(s, a) - y)          (or squared error)

Only real terminations cut the bootstrap; truncated episodes still bootstrap. Masked
candidates (`obs["mask"] == 0`) are never chosen, neither by the policy nor inside the
target's argmax, and a next state with no valid candidate contributes 0. `gamma = 0`
gives the myopic baseline: the same network regressed on the immediate reward.
`cql_alpha > 0` adds the conservative penalty `cql_alpha * mean(logsumexp_a Q(s, a) -
Q(s, a_logged))` over the valid actions (`liveq.algos.offline_loss`), for training
offline from a replay buffer filled with logged transitions; with `td_weight = 0` only
that term is left, which is behaviour cloning (the cross-entropy of the logged action
under a softmax of the Q-values).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F

from liveq.algos.offline_loss import cql_penalty
from liveq.buffers.replay import ReplayBatch
from liveq.core.config import ConfigError, require
from liveq.nets.q_networks import make_q_network, masked_q, obs_to_tensor
from liveq.policies.base import Action, GreedyPolicy, Obs, action_mask
from liveq.policies.explore import EpsilonGreedy, linear_schedule


@dataclass(kw_only=True)
class DQNConfig:
    """Hyper-parameters of DQN; step counts are environment steps summed over all envs."""

    gamma: float = 0.99
    """Discount factor; 0 gives the myopic (immediate-reward) baseline."""
    lr: float = 1e-3
    """Adam learning rate."""
    batch_size: int = 64
    """Transitions per gradient step."""
    buffer_size: int = 100_000
    """Replay capacity in transitions."""
    learning_starts: int = 1_000
    """Environment steps collected before the first gradient step."""
    train_freq: int = 4
    """Environment steps between two rounds of gradient steps."""
    gradient_steps: int = 1
    """Gradient steps per round."""
    target_update_interval: int = 500
    """Gradient steps between hard target copies (used when tau == 1)."""
    tau: float = 1.0
    """Target update rate: 1 = hard copy every interval, < 1 = Polyak after every step."""
    double: bool = True
    """Pick the next action with the online network (double DQN)."""
    huber: bool = True
    """Huber (smooth L1) loss instead of squared error."""
    max_grad_norm: float = 10.0
    """Clip the gradient's global norm to this; 0 disables clipping."""
    cql_alpha: float = 0.0
    """Weight of the conservative (CQL) penalty over the valid candidates of each sampled
    state, for learning offline from a filled replay buffer; 0 = plain DQN."""
    td_weight: float = 1.0
    """Weight of the TD loss; 0 with cql_alpha > 0 leaves behaviour cloning alone."""
    epsilon_start: float = 1.0
    """Exploration rate at the first step."""
    epsilon_end: float = 0.05
    """Exploration rate after the schedule ends."""
    epsilon_fraction: float = 0.1
    """Fraction of the total environment steps over which epsilon decays linearly."""
    hidden_sizes: list[int] = field(default_factory=lambda: [256, 256])
    """Hidden layer widths (for candidates: the first is the viewer encoder's width)."""

    def validate(self) -> None:
        require(0.0 <= self.gamma <= 1.0, f"gamma must be in [0, 1], got {self.gamma}")
        require(self.lr > 0, f"lr must be positive, got {self.lr}")
        for name in ("batch_size", "buffer_size", "train_freq", "gradient_steps",
                     "target_update_interval"):
            require(getattr(self, name) >= 1, f"{name} must be at least 1, got "
                    f"{getattr(self, name)}")
        require(self.learning_starts >= 0, f"learning_starts must be >= 0, got "
                f"{self.learning_starts}")
        require(0.0 < self.tau <= 1.0, f"tau must be in (0, 1], got {self.tau}")
        require(self.max_grad_norm >= 0, f"max_grad_norm must be >= 0, got {self.max_grad_norm}")
        require(self.cql_alpha >= 0, f"cql_alpha must be >= 0, got {self.cql_alpha}")
        require(self.td_weight >= 0, f"td_weight must be >= 0, got {self.td_weight}")
        require(self.td_weight > 0 or self.cql_alpha > 0,
                "td_weight and cql_alpha cannot both be 0 (nothing left to learn)")
        for name in ("epsilon_start", "epsilon_end", "epsilon_fraction"):
            value = getattr(self, name)
            require(0.0 <= value <= 1.0, f"{name} must be in [0, 1], got {value}")
        require(len(self.hidden_sizes) >= 1 and min(self.hidden_sizes) >= 1,
                f"hidden_sizes must be a non-empty list of positive widths, got "
                f"{self.hidden_sizes}")


def td_target(rewards: torch.Tensor, terminated: torch.Tensor, gamma: float,
              next_q_target: torch.Tensor, next_q_online: torch.Tensor | None = None,
              next_mask: torch.Tensor | None = None) -> torch.Tensor:
    """`r + gamma * (1 - terminated) * Q_target(s', a*)`, shape (batch,).

    `a*` is the argmax of `next_q_online` (double DQN) or of `next_q_target` (plain),
    both (batch, n_actions), over the allowed actions in `next_mask`; a next state with
    no allowed action has value 0.
    """
    selector = next_q_target if next_q_online is None else next_q_online
    best = masked_q(selector, next_mask).argmax(dim=1, keepdim=True)  # (batch, 1)
    next_value = next_q_target.gather(1, best).squeeze(1)  # (batch,)
    if next_mask is not None:
        next_value = torch.where(next_mask.any(dim=1), next_value, torch.zeros_like(next_value))
    return rewards + gamma * (1.0 - terminated) * next_value


class GreedyQPolicy(GreedyPolicy):
    """Deterministic argmax over allowed actions of a Q-network (a live view of `q_net`;
    `freeze()` gives a snapshot)."""

    def __init__(self, q_net: torch.nn.Module, n_actions: int):
        self.q_net = q_net
        self.n_actions = n_actions

    def allowed(self, obs: Obs, mask: np.ndarray | None = None) -> np.ndarray:
        return action_mask(obs, mask, self.n_actions)

    def scores(self, obs: Obs, mask: np.ndarray | None = None) -> np.ndarray:
        """Q-values (n_envs, n_actions), -inf where not allowed."""
        with torch.no_grad():
            q_values = self.q_net(obs_to_tensor(obs)).numpy()
        return np.where(self.allowed(obs, mask), q_values, -np.inf)

    def freeze(self) -> GreedyQPolicy:
        """A copy acting on a deep copy of the network, untouched by later updates."""
        return GreedyQPolicy(copy.deepcopy(self.q_net).requires_grad_(False), self.n_actions)


def _check_spaces(obs_space: gym.Space, action_space: gym.Space) -> int:
    if isinstance(action_space, gym.spaces.MultiDiscrete):
        raise ConfigError("DQN recommends one item per step; ranked slates (MultiDiscrete "
                          "actions) need SlateQ, which is not available yet")
    if not isinstance(action_space, gym.spaces.Discrete):
        raise ConfigError(f"DQN needs a Discrete action space, got {action_space}")
    return int(action_space.n)


class DQNAgent:
    """Online and target Q-networks, optimizer and exploration RNG of one DQN learner."""

    def __init__(self, obs_space: gym.Space, action_space: gym.Space, config: DQNConfig,
                 seed: int | np.random.SeedSequence):
        self.config = config
        self.n_actions = _check_spaces(obs_space, action_space)
        seq = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
        init_seq, act_seq = seq.spawn(2)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(init_seq.generate_state(1)[0]))
            self.q_net = make_q_network(obs_space, self.n_actions, config.hidden_sizes)
        self.target_net = copy.deepcopy(self.q_net).requires_grad_(False)
        self.optimizer = torch.optim.Adam(self.q_net.parameters(), lr=config.lr)
        self.rng = np.random.default_rng(act_seq)
        self.greedy = GreedyQPolicy(self.q_net, self.n_actions)
        self.behaviour = EpsilonGreedy(self.greedy, config.epsilon_start, self.rng)
        self.updates = 0  # gradient steps taken

    @property
    def epsilon(self) -> float:
        """The behaviour policy's current exploration rate."""
        return self.behaviour.epsilon

    @epsilon.setter
    def epsilon(self, value: float) -> None:
        self.behaviour.epsilon = value

    def set_progress(self, env_steps: int, total_env_steps: int) -> float:
        """Move epsilon along its schedule; returns the new epsilon."""
        c = self.config
        self.epsilon = linear_schedule(env_steps, c.epsilon_start, c.epsilon_end,
                                       c.epsilon_fraction * total_env_steps)
        return self.epsilon

    def act(self, obs: Obs, mask: np.ndarray | None = None) -> Action:
        """Epsilon-greedy over allowed actions, with each chosen action's propensity."""
        return self.behaviour.act(obs, mask)

    def greedy_policy(self, frozen: bool = False) -> GreedyQPolicy:
        """The deterministic policy (propensity 1) for evaluation and serving: a live view
        that follows later updates, or with `frozen` a snapshot of the network now."""
        return self.greedy.freeze() if frozen else self.greedy

    def update(self, batch: ReplayBatch) -> dict[str, float]:
        """One gradient step on `batch`; returns the loss and the mean Q of taken actions."""
        c = self.config
        obs, next_obs = obs_to_tensor(batch.obs), obs_to_tensor(batch.next_obs)
        actions = torch.as_tensor(batch.actions).long().unsqueeze(1)  # (batch, 1)
        rewards = torch.as_tensor(batch.rewards, dtype=torch.float32)
        terminated = torch.as_tensor(batch.terminated, dtype=torch.float32)
        next_mask = next_obs.get("mask") if isinstance(next_obs, dict) else None
        with torch.no_grad():
            next_q_online = self.q_net(next_obs) if c.double else None
            target = td_target(rewards, terminated, c.gamma, self.target_net(next_obs),
                               next_q_online, next_mask)
        q_values = self.q_net(obs)  # (batch, n_actions)
        q_taken = q_values.gather(1, actions).squeeze(1)  # (batch,)
        loss_fn = F.smooth_l1_loss if c.huber else F.mse_loss
        loss = loss_fn(q_taken, target)
        if c.td_weight != 1.0:
            loss = c.td_weight * loss
        if c.cql_alpha > 0:
            mask = obs.get("mask") if isinstance(obs, dict) else None
            loss = loss + c.cql_alpha * cql_penalty(q_values, mask, actions.squeeze(1))
        self.optimizer.zero_grad()
        loss.backward()
        if c.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.q_net.parameters(), c.max_grad_norm)
        self.optimizer.step()
        self.updates += 1
        self._update_target()
        return {"loss": loss.item(), "q_mean": q_taken.mean().item()}

    def _update_target(self) -> None:
        c = self.config
        if c.tau >= 1.0:
            if self.updates % c.target_update_interval == 0:
                self.target_net.load_state_dict(self.q_net.state_dict())
            return
        with torch.no_grad():
            for target, online in zip(self.target_net.parameters(), self.q_net.parameters(),
                                      strict=True):
                target.lerp_(online, c.tau)

    def state_dict(self) -> dict[str, Any]:
        """Networks, optimizer, counters and RNG state, loadable with weights_only=True."""
        return {
            "q_net": self.q_net.state_dict(),
            "target_net": self.target_net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "updates": self.updates,
            "epsilon": self.epsilon,
            "rng": self.rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.q_net.load_state_dict(state["q_net"])
        self.target_net.load_state_dict(state["target_net"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.updates = int(state["updates"])
        self.epsilon = float(state["epsilon"])
        self.rng.bit_generator.state = state["rng"]
