"""SlateQ (Ie et al., IJCAI 2019): the value of a ranked slate from item values.

A slate's long-term value decomposes over what the viewer consumes:

    Q(s, A) = P(none | s, A) Qbar(s, none) + sum_r P(a_r | s, A) Qbar(s, a_r)

`Qbar(s, i)` is the long-term value of the viewer opening item `i` (one network scores
every candidate; a second head values opening nothing), and `P` is a learnt conditional
logit with position bias (`liveq.algos.slate_choice.LogitChoiceModel`), fit by maximum
likelihood to the logged clicks, the no-click option included. Each update:

    choice model:  one Adam step on the negative log-likelihood of the opened ranks
    item values:   Qbar(s, opened item, or none)  <-  r + gamma (1 - terminated) Q(s', A*)

with `A* = argmax_A Q_online(s', A)` found by the exact slate optimisation (or the
paper's top-k heuristic, `slate_optimizer: topk`) and its value read with the target
network, i.e. SlateQ's Q-learning target with double-Q selection. Only the consumed
item's value is regressed, as in the paper. The greedy policy shows the optimal slate
under the current model; exploration is `EpsilonGreedy` around it, so both policies
follow the Policy contract with exact slate probabilities.

Replay stores each transition's opened rank (`liveq.buffers.clicks.ClickCodec`, from the
env's `clicked_rank` info). SlateQ needs a slate world (`slate_size > 1`) with dict
observations; anything else is a `ConfigError` saying so.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from liveq.algos.dqn import gradient_step, item_actions, seeded_q_network
from liveq.algos.slate_choice import LogitChoiceModel, best_slates, shown_ranks, slate_value
from liveq.buffers.clicks import CLICK_FIELD, ClickCodec
from liveq.buffers.replay import ObsCodec, ReplayBatch, ReplaySchedule
from liveq.core.config import ConfigError, require
from liveq.nets.q_networks import load_weights, mlp, obs_to_tensor
from liveq.policies.base import Action, GreedyPolicy, Obs
from liveq.policies.explore import EpsilonGreedy, behaviour_epsilon, linear_schedule

OPTIMIZERS = ("exact", "topk")


@dataclass(kw_only=True)
class SlateQConfig:
    """Hyper-parameters of SlateQ; step counts are environment steps summed over all envs."""

    gamma: float = 0.99
    """Discount factor of the item values."""
    lr: float = 1e-3
    """Adam learning rate of the item-value network."""
    choice_lr: float = 1e-2
    """Adam learning rate of the choice model."""
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
    """Gradient steps between hard copies of the item values into the target network."""
    huber: bool = True
    """Huber (smooth L1) loss instead of squared error."""
    max_grad_norm: float = 10.0
    """Clip the item-value gradient's global norm to this; 0 disables clipping."""
    epsilon_start: float = 1.0
    """Exploration rate (share of uniformly random slates) at the first step."""
    epsilon_end: float = 0.05
    """Exploration rate after the schedule ends."""
    epsilon_fraction: float = 0.1
    """Fraction of the total environment steps over which epsilon decays linearly."""
    hidden_sizes: list[int] = field(default_factory=lambda: [256, 256])
    """Hidden layer widths of the item-value network (the first is the viewer encoder's)."""
    slate_optimizer: str = "exact"
    """How slates are chosen: exact (best SlateQ value, Dinkelbach) or topk (by e^u Qbar)."""

    def validate(self) -> None:
        require(0.0 <= self.gamma <= 1.0, f"gamma must be in [0, 1], got {self.gamma}")
        for name in ("lr", "choice_lr"):
            require(getattr(self, name) > 0, f"{name} must be positive, got "
                    f"{getattr(self, name)}")
        for name in ("batch_size", "buffer_size", "train_freq", "gradient_steps",
                     "target_update_interval"):
            require(getattr(self, name) >= 1, f"{name} must be at least 1, got "
                    f"{getattr(self, name)}")
        require(self.learning_starts >= 0, f"learning_starts must be >= 0, got "
                f"{self.learning_starts}")
        require(self.max_grad_norm >= 0, f"max_grad_norm must be >= 0, got {self.max_grad_norm}")
        for name in ("epsilon_start", "epsilon_end", "epsilon_fraction"):
            value = getattr(self, name)
            require(0.0 <= value <= 1.0, f"{name} must be in [0, 1], got {value}")
        require(len(self.hidden_sizes) >= 1 and min(self.hidden_sizes) >= 1,
                f"hidden_sizes must be a non-empty list of positive widths, got "
                f"{self.hidden_sizes}")
        require(self.slate_optimizer in OPTIMIZERS, f"slate_optimizer must be one of "
                f"{list(OPTIMIZERS)}, got '{self.slate_optimizer}'")

    def replay_schedule(self) -> ReplaySchedule:
        return ReplaySchedule(batch_size=self.batch_size, buffer_size=self.buffer_size,
                              learning_starts=self.learning_starts, train_freq=self.train_freq,
                              gradient_steps=self.gradient_steps)


class ItemValues(nn.Module):
    """`Qbar(s, i)` for every candidate `(batch, K)` and `Qbar(s, none)` `(batch,)`."""

    def __init__(self, items: nn.Module, viewer_dim: int, hidden: list[int]):
        super().__init__()
        self.items = items
        self.null = mlp(viewer_dim, hidden, 1)

    def forward(self, obs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.items(obs), self.null(obs["viewer"]).squeeze(1)


def slate_spaces(obs_space: gym.Space, action_space: gym.Space) -> tuple[int, int]:
    """`(n_candidates, slate_size)`, or a `ConfigError` naming why SlateQ cannot run here."""
    if not isinstance(action_space, gym.spaces.MultiDiscrete):
        raise ConfigError(f"slateq ranks slates, but this env's action space is {action_space} "
                          "(one item per step): set the env's slate_size above 1, or use "
                          "agent dqn")
    n_candidates, slate_size = item_actions(action_space, "slateq")
    if not (isinstance(obs_space, gym.spaces.Dict) and "candidates" in obs_space.spaces):
        raise ConfigError("slateq needs dict observations with per-candidate features "
                          f"('viewer', 'candidates', 'mask'), got {obs_space}")
    return n_candidates, slate_size


class SlateQPolicy(GreedyPolicy):
    """Shows the slate of highest SlateQ value under the current item values and choice
    model (a live view of both; `freeze()` gives a snapshot)."""

    def __init__(self, values: ItemValues, choice: LogitChoiceModel, slate_size: int,
                 method: str):
        self.values, self.choice = values, choice
        self.slate_size, self.method = slate_size, method

    def evaluate(self, obs: Obs, mask: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
        """`(scores (n, K), slate values (n,))` of the best slates."""
        allowed = self.allowed(obs, mask)
        tensors = obs_to_tensor(obs)
        with torch.no_grad():
            item_q, null_q = self.values(tensors)
            utilities = self.choice.utilities(tensors["candidates"])
            bias = self.choice.rank_bias()
        return best_slates(utilities.numpy(), item_q.numpy(), null_q.numpy(), bias.numpy(),
                           allowed, self.method)

    def scores(self, obs: Obs, mask: np.ndarray | None = None) -> np.ndarray:
        return self.evaluate(obs, mask)[0]

    def freeze(self) -> SlateQPolicy:
        return SlateQPolicy(copy.deepcopy(self.values).requires_grad_(False),
                            copy.deepcopy(self.choice).requires_grad_(False),
                            self.slate_size, self.method)


class SlateQAgent:
    """Item values (online and target), choice model, optimizers and exploration RNG."""

    def __init__(self, obs_space: gym.Space, action_space: gym.Space, config: SlateQConfig,
                 seed: int | np.random.SeedSequence):
        self.config = config
        self.n_candidates, self.slate_size = slate_spaces(obs_space, action_space)
        seq = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
        init_seq, act_seq = seq.spawn(2)
        items = seeded_q_network(obs_space, self.n_candidates, config.hidden_sizes, init_seq)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(init_seq.generate_state(2)[1]))
            self.values = ItemValues(items, obs_space["viewer"].shape[0], config.hidden_sizes)
        self.target = copy.deepcopy(self.values).requires_grad_(False)
        self.choice = LogitChoiceModel(obs_space["candidates"].shape[1], self.slate_size)
        self.optimizer = torch.optim.Adam(self.values.parameters(), lr=config.lr)
        self.choice_optimizer = torch.optim.Adam(self.choice.parameters(), lr=config.choice_lr)
        self.rng = np.random.default_rng(act_seq)
        self.greedy = SlateQPolicy(self.values, self.choice, self.slate_size,
                                   config.slate_optimizer)
        self.behaviour = EpsilonGreedy(self.greedy, config.epsilon_start, self.rng)
        self.updates = 0

    epsilon = behaviour_epsilon

    def set_progress(self, env_steps: int, total_env_steps: int) -> float:
        c = self.config
        self.epsilon = linear_schedule(env_steps, c.epsilon_start, c.epsilon_end,
                                       c.epsilon_fraction * total_env_steps)
        return self.epsilon

    def act(self, obs: Obs, mask: np.ndarray | None = None) -> Action:
        return self.behaviour.act(obs, mask)

    def greedy_policy(self, frozen: bool = False) -> SlateQPolicy:
        return self.greedy.freeze() if frozen else self.greedy

    @property
    def replay_schedule(self) -> ReplaySchedule:
        return self.config.replay_schedule()

    def replay_codec(self, inner: ObsCodec) -> ClickCodec:
        """Replay must remember which rank each transition's viewer opened."""
        return ClickCodec(inner)

    def update(self, batch: ReplayBatch) -> dict[str, float]:
        """One step of the choice model and one of the item values on `batch`."""
        if not isinstance(batch.next_obs, dict) or CLICK_FIELD not in batch.next_obs:
            raise ConfigError("slateq learns from which rank was opened: its batches need "
                              f"next_obs['{CLICK_FIELD}'] (replay through ClickCodec, from "
                              f"the env's '{CLICK_FIELD}' info)")
        slates = np.asarray(batch.actions, dtype=np.int64).reshape(-1, self.slate_size)
        obs = obs_to_tensor(batch.obs)
        shown = torch.as_tensor(shown_ranks(slates, np.asarray(batch.obs["mask"], bool)))
        clicked = torch.as_tensor(np.asarray(batch.next_obs[CLICK_FIELD], np.int64))
        slates_t = torch.as_tensor(slates)
        choice_loss = self.choice.loss(obs["candidates"], slates_t, shown, clicked)
        gradient_step(self.choice_optimizer, self.choice.parameters(), choice_loss, 0.0)
        loss, q_mean = self._value_step(batch, obs, slates_t, clicked)
        self.updates += 1
        if self.updates % self.config.target_update_interval == 0:
            self.target.load_state_dict(self.values.state_dict())
        return {"loss": loss, "q_mean": q_mean, "choice_nll": choice_loss.item(),
                "click_rate": float((clicked >= 0).float().mean())}

    def _value_step(self, batch: ReplayBatch, obs: dict[str, torch.Tensor],
                    slates: torch.Tensor, clicked: torch.Tensor) -> tuple[float, float]:
        c = self.config
        target = self._target(batch)
        item_q, null_q = self.values(obs)
        opened = slates.gather(1, clicked.clamp(min=0).unsqueeze(1))  # (batch, 1)
        taken = torch.where(clicked >= 0, item_q.gather(1, opened).squeeze(1), null_q)
        criterion = F.smooth_l1_loss if c.huber else F.mse_loss
        loss = criterion(taken, target)
        gradient_step(self.optimizer, self.values.parameters(), loss, c.max_grad_norm)
        return loss.item(), taken.mean().item()

    def _target(self, batch: ReplayBatch) -> torch.Tensor:
        """`r + gamma (1 - terminated) Q_target(s', A*)`, `A*` the online best slate."""
        next_obs = {k: v for k, v in batch.next_obs.items() if k != CLICK_FIELD}
        mask = np.asarray(next_obs["mask"], dtype=bool)
        tensors = obs_to_tensor(next_obs)
        scores = self.greedy.scores(next_obs, mask)
        chosen = torch.as_tensor(np.argsort(-scores, axis=1, kind="stable")
                                 [:, : self.slate_size].copy())
        with torch.no_grad():
            item_q, null_q = self.target(tensors)
            logits = self.choice.slate_logits(self.choice.utilities(tensors["candidates"]),
                                              chosen, torch.as_tensor(shown_ranks(
                                                  chosen.numpy(), mask)))
            value = slate_value(torch.softmax(logits, dim=1), item_q.gather(1, chosen), null_q)
        rewards = torch.as_tensor(batch.rewards, dtype=torch.float32)
        alive = 1.0 - torch.as_tensor(batch.terminated, dtype=torch.float32)
        return rewards + self.config.gamma * alive * value.float()

    def state_dict(self) -> dict[str, Any]:
        return {"values": self.values.state_dict(), "target": self.target.state_dict(),
                "choice": self.choice.state_dict(), "optimizer": self.optimizer.state_dict(),
                "choice_optimizer": self.choice_optimizer.state_dict(),
                "updates": self.updates, "epsilon": self.epsilon,
                "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        load_weights(self.values, state["values"], "values")
        load_weights(self.target, state["target"], "target")
        load_weights(self.choice, state["choice"], "choice")
        self.optimizer.load_state_dict(state["optimizer"])
        self.choice_optimizer.load_state_dict(state["choice_optimizer"])
        self.updates = int(state["updates"])
        self.epsilon = float(state["epsilon"])
        self.rng.bit_generator.state = state["rng"]
