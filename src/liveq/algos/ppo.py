"""Proximal policy optimisation (Schulman et al. 2017) and A2C, with masked candidates.

The actor scores every action; for LiveStream it is the item-conditioned scorer of
`liveq.nets.q_networks` (one shared head over viewer code and candidate features), so
the policy follows the changing set of live streamers. The action distribution is a
softmax over the VALID candidates only: masked ones get probability exactly 0 when
acting and logit `MASKED_Q` in the loss (so their probability underflows to 0 there
too). The critic is `liveq.nets.value_networks`. Each rollout of the on-policy loop
(`liveq.train.on_policy`) arrives with GAE advantages; `update` then runs `n_epochs`
passes over it in `n_minibatches` shuffled minibatches of

    ratio  = pi(a|s) / pi_old(a|s)                         (pi_old: when collected)
    L_pi   = -mean(min(ratio * A, clip(ratio, 1 - eps, 1 + eps) * A))   (eps = clip_range)
    L      = L_pi + value_coef * mean((V(s) - G)^2) / 2 - entropy_coef * mean(H(pi(.|s)))

with A normalised per minibatch (`normalize_advantages`) and the gradient's global norm
clipped. `clip_range = 0` gives the plain policy-gradient loss `-mean(log pi(a|s) A)`:
with one epoch of one minibatch and short rollouts that is A2C (Mnih et al. 2016; here
with Adam, not RMSprop), registered as `a2c` with those defaults. Rows with no valid
candidate (a session restarting) carry no choice and are left out of the policy loss.

Acting (`act`, `behaviour`) samples the masked softmax and reports its full distribution
(`liveq.policies.explore.Softmax` at temperature 1), so logs of it are evaluable
off-policy; `greedy_policy()` is the argmax for evaluation and serving.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F

from liveq.algos.dqn import GreedyQPolicy, gradient_step, seeded_q_network
from liveq.buffers.rollout import Rollout, RolloutSchedule
from liveq.core.config import ConfigError, require
from liveq.nets.q_networks import MASKED_Q, load_weights, obs_to_tensor
from liveq.nets.value_networks import make_value_network
from liveq.policies.base import Action, Obs
from liveq.policies.explore import Softmax


@dataclass(kw_only=True)
class PPOConfig:
    """Hyper-parameters of PPO; `n_steps` counts vector steps (rows per env)."""

    gamma: float = 0.99
    """Discount factor."""
    gae_lambda: float = 0.95
    """GAE's lambda: 0 = one-step TD advantages, 1 = Monte Carlo returns."""
    lr: float = 3e-4
    """Adam learning rate (the start value when annealed)."""
    anneal_lr: bool = True
    """Decay the learning rate linearly to 0 over the run's total_env_steps."""
    n_steps: int = 16
    """Vector steps per rollout; a rollout holds n_steps * n_envs rows."""
    n_epochs: int = 10
    """Passes over each rollout."""
    n_minibatches: int = 4
    """Minibatches per pass (each about rows / n_minibatches)."""
    clip_range: float = 0.2
    """PPO's ratio clip epsilon; 0 = no clipping (plain policy gradient, as A2C)."""
    normalize_advantages: bool = True
    """Scale each minibatch's advantages to mean 0 and standard deviation 1."""
    value_coef: float = 0.5
    """Weight of the critic's squared error in the loss."""
    entropy_coef: float = 0.0
    """Weight of the entropy bonus (keeps the policy exploring)."""
    max_grad_norm: float = 0.5
    """Clip the gradient's global norm to this; 0 disables clipping."""
    hidden_sizes: list[int] = field(default_factory=lambda: [64, 64])
    """Hidden layer widths of actor and critic (for candidates: the first is the viewer
    encoder's width)."""

    def validate(self) -> None:
        for name in ("gamma", "gae_lambda"):
            value = getattr(self, name)
            require(0.0 <= value <= 1.0, f"{name} must be in [0, 1], got {value}")
        require(self.lr > 0, f"lr must be positive, got {self.lr}")
        for name in ("n_steps", "n_epochs", "n_minibatches"):
            require(getattr(self, name) >= 1, f"{name} must be at least 1, got "
                    f"{getattr(self, name)}")
        require(0.0 <= self.clip_range < 1.0, f"clip_range must be in [0, 1), got "
                f"{self.clip_range}")
        for name in ("value_coef", "entropy_coef", "max_grad_norm"):
            require(getattr(self, name) >= 0, f"{name} must be >= 0, got "
                    f"{getattr(self, name)}")
        require(len(self.hidden_sizes) >= 1 and min(self.hidden_sizes) >= 1,
                f"hidden_sizes must be a non-empty list of positive widths, got "
                f"{self.hidden_sizes}")


@dataclass(kw_only=True)
class A2CConfig(PPOConfig):
    """A2C: short rollouts, one plain policy-gradient step per rollout."""

    lr: float = 7e-4
    """Adam learning rate (the start value when annealed)."""
    anneal_lr: bool = False
    """Decay the learning rate linearly to 0 over the run's total_env_steps."""
    n_steps: int = 5
    """Vector steps per rollout; a rollout holds n_steps * n_envs rows."""
    n_epochs: int = 1
    """Passes over each rollout."""
    n_minibatches: int = 1
    """Minibatches per pass (each about rows / n_minibatches)."""
    clip_range: float = 0.0
    """PPO's ratio clip epsilon; 0 = no clipping (plain policy gradient, as A2C)."""
    normalize_advantages: bool = False
    """Scale each minibatch's advantages to mean 0 and standard deviation 1."""
    entropy_coef: float = 0.01
    """Weight of the entropy bonus (keeps the policy exploring)."""
    gae_lambda: float = 1.0
    """GAE's lambda: 0 = one-step TD advantages, 1 = n-step returns to the rollout's end."""


def single_item_actions(action_space: gym.Space, algorithm: str) -> int:
    """The number of actions of a Discrete space; ranked slates are refused by name."""
    if isinstance(action_space, gym.spaces.MultiDiscrete):
        raise ConfigError(f"{algorithm} recommends one item per step: ranked slates "
                          f"(slate_size > 1, MultiDiscrete actions {action_space}) are not "
                          "supported; set the env's slate_size to 1")
    if not isinstance(action_space, gym.spaces.Discrete):
        raise ConfigError(f"{algorithm} needs a Discrete action space, got {action_space}")
    return int(action_space.n)


def take(obs: Any, rows: np.ndarray | torch.Tensor) -> Any:
    """The `rows` of a batched tensor observation (a tensor or a dict of tensors)."""
    if isinstance(obs, dict):
        return {key: value[rows] for key, value in obs.items()}
    return obs[rows]


class PPOAgent:
    """Actor, critic, optimizer and the RNG (sampling, minibatch order) of one learner."""

    name = "PPO"

    def __init__(self, obs_space: gym.Space, action_space: gym.Space, config: PPOConfig,
                 seed: int | np.random.SeedSequence):
        self.config = config
        self.n_actions = single_item_actions(action_space, self.name)
        seq = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
        actor_seq, critic_seq, rng_seq = seq.spawn(3)
        self.actor = seeded_q_network(obs_space, self.n_actions, config.hidden_sizes,
                                      actor_seq)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(critic_seq.generate_state(1)[0]))
            self.critic = make_value_network(obs_space, config.hidden_sizes)
        self.params = [*self.actor.parameters(), *self.critic.parameters()]
        self.optimizer = torch.optim.Adam(self.params, lr=config.lr, eps=1e-5)
        self.rng = np.random.default_rng(rng_seq)
        self.greedy = GreedyQPolicy(self.actor, self.n_actions)
        self.behaviour = Softmax(self.greedy, 1.0, self.rng)
        self.updates = 0  # gradient steps taken

    def act(self, obs: Obs, mask: np.ndarray | None = None) -> Action:
        """A draw from the masked softmax of the actor, with its propensity."""
        return self.behaviour.act(obs, mask)

    def greedy_policy(self, frozen: bool = False) -> GreedyQPolicy:
        """Argmax of the actor's logits over the valid candidates: a live view, or with
        `frozen` a snapshot."""
        return self.greedy.freeze() if frozen else self.greedy

    def set_progress(self, env_steps: int, total_env_steps: int) -> float:
        """Anneal the learning rate (when asked); there is no epsilon, so NaN."""
        if self.config.anneal_lr:
            lr = self.config.lr * max(1.0 - env_steps / max(total_env_steps, 1), 0.0)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
        return float("nan")

    @property
    def rollout_schedule(self) -> RolloutSchedule:
        """How the on-policy loop collects rollouts for this learner."""
        c = self.config
        return RolloutSchedule(n_steps=c.n_steps, gamma=c.gamma, gae_lambda=c.gae_lambda)

    def values(self, obs: Obs) -> np.ndarray:
        """The critic's V(s) `(batch,)` of a batched observation."""
        with torch.no_grad():
            return self.critic(obs_to_tensor(obs)).double().numpy()

    def log_probs(self, obs: Any) -> torch.Tensor:
        """`(batch, n_actions)` log-probabilities of the masked softmax (tensor obs)."""
        logits = self.actor(obs)
        mask = obs.get("mask") if isinstance(obs, dict) else None
        if mask is not None:
            logits = logits.masked_fill(~mask, MASKED_Q)
        return F.log_softmax(logits, dim=1)

    def update(self, rollout: Rollout) -> dict[str, float]:
        """`n_epochs` passes of minibatch gradient steps over `rollout`; returns the mean
        losses, entropy, approximate KL and the fraction of clipped ratios."""
        if not isinstance(rollout, Rollout):
            raise ConfigError(f"{self.name} learns from on-policy rollouts (loop 'on_policy'), "
                              f"not from a {type(rollout).__name__}: it cannot train from "
                              "replay or a logged buffer")
        c = self.config
        obs = obs_to_tensor(rollout.obs)
        actions = torch.as_tensor(rollout.actions).long()
        with torch.no_grad():
            old_logp = self.log_probs(obs).gather(1, actions[:, None]).squeeze(1)
        advantages = torch.as_tensor(rollout.advantages, dtype=torch.float32)
        returns = torch.as_tensor(rollout.returns, dtype=torch.float32)
        chooses = obs["mask"].any(dim=1) if isinstance(obs, dict) and "mask" in obs \
            else torch.ones(len(actions), dtype=torch.bool)
        sums: dict[str, float] = {}
        steps = 0
        for _ in range(c.n_epochs):
            order = self.rng.permutation(len(actions))
            for rows in np.array_split(order, min(c.n_minibatches, len(order))):
                idx = torch.as_tensor(rows)
                loss, stats = self.loss(take(obs, idx), actions[idx], old_logp[idx],
                                        advantages[idx], returns[idx], chooses[idx])
                gradient_step(self.optimizer, self.params, loss, c.max_grad_norm)
                self.updates += 1
                steps += 1
                for key, value in stats.items():
                    sums[key] = sums.get(key, 0.0) + value
        return {key: value / steps for key, value in sums.items()}

    def loss(self, obs: Any, actions: torch.Tensor, old_logp: torch.Tensor,
             advantages: torch.Tensor, returns: torch.Tensor,
             chooses: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """The clipped (or plain) policy loss, value loss and entropy bonus of a
        minibatch; `chooses` marks the rows with at least one valid candidate."""
        c = self.config
        log_probs = self.log_probs(obs)
        logp = log_probs.gather(1, actions[:, None]).squeeze(1)
        entropy = -(log_probs.exp() * log_probs).sum(dim=1)
        if c.normalize_advantages and len(advantages) > 1:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        log_ratio = logp - old_logp
        ratio = log_ratio.exp()
        if c.clip_range > 0:
            clipped = ratio.clamp(1.0 - c.clip_range, 1.0 + c.clip_range)
            per_row = -torch.min(ratio * advantages, clipped * advantages)
        else:
            per_row = -logp * advantages
        weight = chooses.float() / chooses.float().sum().clamp(min=1.0)
        policy_loss = (per_row * weight).sum()
        mean_entropy = (entropy * weight).sum()
        value_loss = 0.5 * F.mse_loss(self.critic(obs), returns)
        loss = policy_loss + c.value_coef * value_loss - c.entropy_coef * mean_entropy
        with torch.no_grad():
            approx_kl = (((ratio - 1.0) - log_ratio) * weight).sum()
            clip_fraction = (((ratio - 1.0).abs() > c.clip_range).float() * weight).sum()
        return loss, {"loss": loss.item(), "policy_loss": policy_loss.item(),
                      "value_loss": value_loss.item(), "entropy": mean_entropy.item(),
                      "approx_kl": approx_kl.item(), "clip_fraction": clip_fraction.item()}

    def state_dict(self) -> dict[str, Any]:
        """Networks, optimizer, counters and RNG state, loadable with weights_only=True."""
        return {"actor": self.actor.state_dict(), "critic": self.critic.state_dict(),
                "optimizer": self.optimizer.state_dict(), "updates": self.updates,
                "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore `state_dict()`; a network of other shapes is a `CheckpointError`."""
        load_weights(self.actor, state["actor"], "actor")
        load_weights(self.critic, state["critic"], "critic")
        self.optimizer.load_state_dict(state["optimizer"])
        self.updates = int(state["updates"])
        self.rng.bit_generator.state = state["rng"]


class A2CAgent(PPOAgent):
    """PPOAgent with A2C's defaults (`A2CConfig`); only the name in errors differs."""

    name = "A2C"
