"""Deep Q-learning (Mnih et al. 2015) with double Q-learning (van Hasselt et al. 2016).

Acting and learning are separate: `DQNAgent.act` is the behaviour policy
(`liveq.policies.explore.EpsilonGreedy` around the greedy Q policy),
`DQNAgent.greedy_policy()` the deterministic policy for evaluation and serving (a live
view, or with `frozen=True` a snapshot later updates leave alone), and
`DQNAgent.update(batch)` one gradient step on a replay batch:

    a*  = argmax_a' Q_online(s', a')         (double)   or   argmax_a' Q_target(s', a')
    y   = r + gamma * (1 - terminated) * Q_target(s', a*)
    L   = huber(Q_online(s, a) - y)          (or squared error)

Three switches, each off by default (plain DQN is then unchanged bit for bit):
`dueling` splits the network into value and advantages (`liveq.nets.q_networks`);
`n_step` replaces (r, s') by the n-step return and the state n steps on, so the target
is `G + gamma^k (1 - terminated) Q_target(s_{t+k}, a*)` (`liveq.buffers.nstep`);
`prioritized` draws transitions by |TD error| and weights each one's loss by its
importance weight (`liveq.buffers.prioritized`), and `update` leaves the new |TD errors|
in `td_errors` for the loop to write back as priorities. Two more, also off by default:
`reward_head` splits Q into an immediate-reward part regressed on r (as the myopic twin's
network is) plus a future part (`liveq.nets.decomposed`); `policy_average` serves a
moving average of the online weights as the greedy policy (`liveq.nets.averaged`).

Slates (`slate_size > 1`, a `SlateSpace` action): DQN keeps one Q-value per candidate,
learns it for the slate's top-ranked item (a logged slate stands for its first entry, with
the whole slate's reward) and recommends the top `slate_size` candidates by Q-value, best
first. It models neither which item is clicked nor position bias; `liveq.algos.slateq`
does (SlateQ).

Only real terminations cut the bootstrap; truncated episodes still bootstrap. Masked
candidates (`obs["mask"] == 0`) are never chosen, neither by the policy nor inside the
target's argmax, and a next state with no valid candidate contributes 0. `gamma = 0`
gives the myopic baseline: the same network regressed on the immediate reward.
Learners that change the objective override `loss` (`liveq.algos.cql` adds the
conservative penalty); `liveq.algos.bc` reuses the network helpers below.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F

from liveq.buffers.replay import Priorities, ReplayBatch, ReplaySchedule
from liveq.core.config import ConfigError, require
from liveq.core.errors import CheckpointError
from liveq.nets.averaged import WeightAverage
from liveq.nets.decomposed import RewardFutureQNetwork
from liveq.nets.grouped import GroupedRewardFutureQNetwork, groupable, stack_adam_state
from liveq.nets.q_networks import load_weights, make_q_network, masked_q, obs_to_tensor
from liveq.policies.base import Action, GreedyPolicy, Obs, action_mask
from liveq.policies.explore import EpsilonGreedy, behaviour_epsilon, linear_schedule


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
    epsilon_start: float = 1.0
    """Exploration rate at the first step."""
    epsilon_end: float = 0.05
    """Exploration rate after the schedule ends."""
    epsilon_fraction: float = 0.1
    """Fraction of the total environment steps over which epsilon decays linearly."""
    hidden_sizes: list[int] = field(default_factory=lambda: [256, 256])
    """Hidden layer widths (for candidates: the first is the viewer encoder's width)."""
    dueling: bool = False
    """Dueling head: Q = V(s) + A(s, a) - mean of A over the valid actions."""
    n_step: int = 1
    """Rewards summed into each target before bootstrapping (1 = one-step DQN)."""
    prioritized: bool = False
    """Prioritized replay: draw transitions in proportion to abs(TD error) ** priority_alpha."""
    priority_alpha: float = 0.6
    """How strongly priorities shape the draw: 0 = uniform, 1 = proportional to abs(TD error)."""
    priority_beta_start: float = 0.4
    """Importance-weight exponent at the first step (1 = full correction of the bias)."""
    priority_beta_end: float = 1.0
    """Importance-weight exponent at the end of training, reached linearly."""
    priority_eps: float = 1e-6
    """Added to abs(TD error) so no transition's priority is 0."""
    reward_head: bool = False
    """Split Q into R + F (`liveq.nets.decomposed`) and regress R on the immediate reward
    (n-step: the n-step reward sum) beside the TD loss on the sum."""
    policy_average: float = 0.0
    """Decay of a moving average of the online weights that the greedy (evaluated, saved
    and served) policy uses (`liveq.nets.averaged`); 0 = the online weights themselves."""

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
        for name in ("epsilon_start", "epsilon_end", "epsilon_fraction"):
            value = getattr(self, name)
            require(0.0 <= value <= 1.0, f"{name} must be in [0, 1], got {value}")
        require(len(self.hidden_sizes) >= 1 and min(self.hidden_sizes) >= 1,
                f"hidden_sizes must be a non-empty list of positive widths, got "
                f"{self.hidden_sizes}")
        require(self.n_step >= 1, f"n_step must be at least 1, got {self.n_step}")
        require(0.0 <= self.priority_alpha <= 1.0,
                f"priority_alpha must be in [0, 1], got {self.priority_alpha}")
        for name in ("priority_beta_start", "priority_beta_end"):
            value = getattr(self, name)
            require(0.0 <= value <= 1.0, f"{name} must be in [0, 1], got {value}")
        require(self.priority_eps > 0, f"priority_eps must be positive, got "
                f"{self.priority_eps}")
        require(0.0 <= self.policy_average < 1.0,
                f"policy_average must be in [0, 1), got {self.policy_average}")

    def replay_schedule(self) -> ReplaySchedule:
        priorities = Priorities(alpha=self.priority_alpha, beta_start=self.priority_beta_start,
                                beta_end=self.priority_beta_end, eps=self.priority_eps)
        return ReplaySchedule(batch_size=self.batch_size, buffer_size=self.buffer_size,
                              learning_starts=self.learning_starts, train_freq=self.train_freq,
                              gradient_steps=self.gradient_steps, n_step=self.n_step,
                              gamma=self.gamma,
                              priorities=priorities if self.prioritized else None)


@dataclass(kw_only=True)
class MyopicConfig(DQNConfig):
    """DQN with gamma 0: the same network regressed on the immediate reward."""

    PINNED: ClassVar[dict[str, float]] = {"gamma": 0.0}
    gamma: float = 0.0
    """Always 0: the myopic baseline values only the immediate reward."""

    def validate(self) -> None:
        super().validate()
        require(self.gamma == 0.0, f"gamma must be 0 for the myopic baseline, got "
                f"{self.gamma} (use agent name dqn to discount later rewards)")


def td_target(rewards: torch.Tensor, terminated: torch.Tensor, gamma: float,
              next_q_target: torch.Tensor, next_q_online: torch.Tensor | None = None,
              next_mask: torch.Tensor | None = None,
              discounts: torch.Tensor | None = None) -> torch.Tensor:
    """`r + gamma * (1 - terminated) * Q_target(s', a*)`, shape (batch,).

    `a*` is the argmax of `next_q_online` (double DQN) or of `next_q_target` (plain),
    both (batch, n_actions), over the allowed actions in `next_mask`; a next state with
    no allowed action has value 0. With per-row `discounts` (n-step: gamma^k, 0 after a
    termination) the target is `r + discounts * Q_target(s', a*)` instead.
    """
    selector = next_q_target if next_q_online is None else next_q_online
    best = masked_q(selector, next_mask).argmax(dim=1, keepdim=True)  # (batch, 1)
    next_value = next_q_target.gather(1, best).squeeze(1)  # (batch,)
    return bootstrap(rewards, terminated, gamma, next_value, next_mask, discounts)


def bootstrap(rewards: torch.Tensor, terminated: torch.Tensor, gamma: float,
              next_value: torch.Tensor, next_mask: torch.Tensor | None = None,
              discounts: torch.Tensor | None = None) -> torch.Tensor:
    """`td_target` from `next_value` = Q_target(s', a*), shape (batch,): 0 where `next_mask`
    allows no action, then discounted (by `discounts` if given) onto the rewards."""
    if next_mask is not None:
        next_value = torch.where(next_mask.any(dim=1), next_value, torch.zeros_like(next_value))
    if discounts is not None:
        return rewards + discounts * next_value
    return rewards + gamma * (1.0 - terminated) * next_value


class QBatch(NamedTuple):
    """A `ReplayBatch` as tensors; the masks are None for observations without one, the
    discounts for one-step batches and the weights for uniform replay."""

    obs: torch.Tensor | dict[str, torch.Tensor]
    actions: torch.Tensor  # (batch,) int64
    rewards: torch.Tensor  # (batch,) float32
    next_obs: torch.Tensor | dict[str, torch.Tensor]
    terminated: torch.Tensor  # (batch,) float32
    mask: torch.Tensor | None  # (batch, n_actions) bool
    next_mask: torch.Tensor | None
    discounts: torch.Tensor | None = None  # (batch,) float32
    weights: torch.Tensor | None = None  # (batch,) float32


def _optional_tensor(values: np.ndarray | None) -> torch.Tensor | None:
    return None if values is None else torch.as_tensor(values, dtype=torch.float32)


def to_q_batch(batch: ReplayBatch) -> QBatch:
    obs, next_obs = obs_to_tensor(batch.obs), obs_to_tensor(batch.next_obs)
    actions = np.asarray(batch.actions)
    actions = actions[:, 0] if actions.ndim == 2 else actions  # a slate: its top item
    return QBatch(obs, torch.as_tensor(actions).long(),
                  torch.as_tensor(batch.rewards, dtype=torch.float32), next_obs,
                  torch.as_tensor(batch.terminated, dtype=torch.float32),
                  obs.get("mask") if isinstance(obs, dict) else None,
                  next_obs.get("mask") if isinstance(next_obs, dict) else None,
                  _optional_tensor(batch.discounts), _optional_tensor(batch.weights))


def taken_q(q_values: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """`q_values[i, actions[i]]`, shape (batch,)."""
    return q_values.gather(1, actions.unsqueeze(1)).squeeze(1)


def seeded_q_network(obs_space: gym.Space, n_actions: int, hidden_sizes: list[int],
                     seed: np.random.SeedSequence, dueling: bool = False,
                     reward_head: bool = False) -> torch.nn.Module:
    """The Q-network for these spaces (with `reward_head`, R + F: a
    `GroupedRewardFutureQNetwork` where it applies, else a `RewardFutureQNetwork`),
    initialised from `seed` without touching torch's global generator."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed.generate_state(1)[0]))
        net = make_q_network(obs_space, n_actions, hidden_sizes, dueling)
        if reward_head:
            future = make_q_network(obs_space, n_actions, hidden_sizes, dueling)
            # Two candidate networks run as one (`liveq.nets.grouped`): the same networks
            # from the same initial weights, for about the per-pass cost of one.
            net = (GroupedRewardFutureQNetwork(net, future)
                   if groupable(net) and groupable(future) else RewardFutureQNetwork(net, future))
        return net


def adam(net: torch.nn.Module, lr: float) -> torch.optim.Adam:
    """Adam for `net`: fused (one kernel for the whole step) for the grouped reward head,
    whose float32 rounding is new anyway; otherwise `foreach`, one kernel per operation
    for all tensors and bit for bit the per-tensor loop, as every earlier run trained."""
    if isinstance(net, GroupedRewardFutureQNetwork):
        return torch.optim.Adam(net.parameters(), lr=lr, fused=True)
    return torch.optim.Adam(net.parameters(), lr=lr, foreach=True)


def gradient_step(optimizer: torch.optim.Optimizer, params: Any, loss: torch.Tensor,
                  max_grad_norm: float) -> None:
    """Backpropagate `loss`, clip the global gradient norm (0 = no clipping), step."""
    optimizer.zero_grad()
    loss.backward()
    if max_grad_norm > 0:
        clip_grad_norm(params, max_grad_norm)
    optimizer.step()


@torch.no_grad()
def clip_grad_norm(params: Any, max_norm: float) -> None:
    """`torch.nn.utils.clip_grad_norm_(params, max_norm)` for CPU float32 parameters, bit for
    bit, without its per-call grouping by device and dtype (a tenth of a millisecond per
    update, which adds up over DQN's thousands of small gradient steps)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    total = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads, 2.0)), 2.0)
    torch._foreach_mul_(grads, torch.clamp(max_norm / (total + 1e-6), max=1.0))


class GreedyQPolicy(GreedyPolicy):
    """Deterministic argmax over allowed actions of a Q-network (a live view of `q_net`;
    `freeze()` gives a snapshot)."""

    def __init__(self, q_net: torch.nn.Module, n_actions: int, slate_size: int = 1):
        self.q_net = q_net
        self.n_actions = n_actions
        self.slate_size = slate_size  # > 1: the top slate_size candidates by Q-value

    def allowed(self, obs: Obs, mask: np.ndarray | None = None) -> np.ndarray:
        return action_mask(obs, mask, self.n_actions)

    def scores(self, obs: Obs, mask: np.ndarray | None = None) -> np.ndarray:
        """Q-values (n_envs, n_actions), -inf where not allowed."""
        with torch.no_grad():
            q_values = self.q_net(obs_to_tensor(obs)).numpy()
        return np.where(self.allowed(obs, mask), q_values, -np.inf)

    def freeze(self) -> GreedyQPolicy:
        """A copy acting on a deep copy of the network, untouched by later updates."""
        return GreedyQPolicy(copy.deepcopy(self.q_net).requires_grad_(False), self.n_actions,
                             self.slate_size)


def discrete_actions(action_space: gym.Space, algorithm: str = "DQN") -> int:
    """The number of actions of a Discrete space; slates and other spaces are refused."""
    if isinstance(action_space, gym.spaces.MultiDiscrete):
        raise ConfigError(f"{algorithm} recommends one item per step; for ranked slates "
                          "(MultiDiscrete actions) use agent slateq or dqn")
    if not isinstance(action_space, gym.spaces.Discrete):
        raise ConfigError(f"{algorithm} needs a Discrete action space, got {action_space}")
    return int(action_space.n)


def item_actions(action_space: gym.Space, algorithm: str = "DQN") -> tuple[int, int]:
    """`(n_candidates, slate_size)` of a Discrete space (slate 1) or of a slate of distinct
    candidates (`MultiDiscrete([K] * L)`); other spaces are a `ConfigError`."""
    if isinstance(action_space, gym.spaces.MultiDiscrete):
        nvec = np.asarray(action_space.nvec)
        if nvec.ndim != 1 or len(set(nvec.tolist())) != 1:
            raise ConfigError(f"{algorithm}: a slate must rank candidates of one table, i.e. "
                              f"MultiDiscrete([K] * slate_size), got nvec {nvec.tolist()}")
        return int(nvec[0]), len(nvec)
    return discrete_actions(action_space, algorithm), 1


class DQNAgent:
    """Online and target Q-networks, optimizer and exploration RNG of one DQN learner."""

    def __init__(self, obs_space: gym.Space, action_space: gym.Space, config: DQNConfig,
                 seed: int | np.random.SeedSequence):
        self.config = config
        self.n_actions, self.slate_size = item_actions(action_space)
        seq = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
        init_seq, act_seq = seq.spawn(2)
        self.q_net = seeded_q_network(obs_space, self.n_actions, config.hidden_sizes, init_seq,
                                      config.dueling, config.reward_head)
        self.target_net = copy.deepcopy(self.q_net).requires_grad_(False)
        self.optimizer = adam(self.q_net, config.lr)
        self.rng = np.random.default_rng(act_seq)
        online = GreedyQPolicy(self.q_net, self.n_actions, self.slate_size)
        self.average = (WeightAverage(self.q_net, config.policy_average)
                        if config.policy_average > 0 else None)
        self.greedy = online if self.average is None else GreedyQPolicy(
            self.average.module, self.n_actions, self.slate_size)
        self.behaviour = EpsilonGreedy(online, config.epsilon_start, self.rng)
        self.updates = 0  # gradient steps taken
        self.td_errors = np.zeros(0, np.float32)  # (batch,) |TD error| of the last update

    epsilon = behaviour_epsilon

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

    @property
    def replay_schedule(self) -> ReplaySchedule:
        """When the off-policy loop samples replay for this learner."""
        return self.config.replay_schedule()

    def update(self, batch: ReplayBatch) -> dict[str, float]:
        """One gradient step on `batch`; returns the loss and the mean Q of taken actions."""
        self._check_batch(batch)
        b = to_q_batch(batch)
        if self.config.reward_head and type(self).loss is DQNAgent.loss:
            loss, stats = self.taken_loss(b)
        else:  # every action's value: CQL's penalty reads them; plain DQN keeps its bits
            loss, stats = self.loss(self.q_net(b.obs), b)  # q_net(obs): (batch, n_actions)
        gradient_step(self.optimizer, self.q_net.parameters(), loss, self.config.max_grad_norm)
        self.updates += 1
        self._update_target()
        if self.average is not None:
            self.average.update(self.q_net)
        return stats

    def loss(self, q_values: torch.Tensor, b: QBatch) -> tuple[torch.Tensor, dict[str, float]]:
        """The TD loss of `q_values` (batch, n_actions) against the (double) DQN target."""
        c = self.config
        with torch.no_grad():
            next_q_online = self.q_net(b.next_obs) if c.double else None
            target = td_target(b.rewards, b.terminated, c.gamma, self.target_net(b.next_obs),
                               next_q_online, b.next_mask, b.discounts)
        reward_taken = taken_q(self.q_net.reward_q(b.obs), b.actions) if c.reward_head else None
        return self.td_loss(taken_q(q_values, b.actions), reward_taken, target, b)

    def taken_loss(self, b: QBatch) -> tuple[torch.Tensor, dict[str, float]]:
        """`loss` from the taken actions' values alone (`q_net.taken`): the same function,
        without scoring the candidates no loss term reads, and with `reward_head` one pass
        for both R and Q = R + F. `update` takes this path with `reward_head` only, where it
        came with the grouped network (`liveq.nets.grouped`) and its new float32 rounding;
        without it DQN's trained weights stay bit for bit those of earlier versions."""
        c = self.config
        with torch.no_grad():  # double DQN: the target network scores a* alone
            if c.double:
                best = masked_q(self.q_net(b.next_obs), b.next_mask).argmax(dim=1)  # a*
                target = bootstrap(b.rewards, b.terminated, c.gamma,
                                   self.target_net.taken(b.next_obs, best), b.next_mask,
                                   b.discounts)
            else:
                target = td_target(b.rewards, b.terminated, c.gamma,
                                   self.target_net(b.next_obs), None, b.next_mask, b.discounts)
        if c.reward_head:
            reward, future = self.q_net.taken_parts(b.obs, b.actions)
            return self.td_loss(reward + future, reward, target, b)
        return self.td_loss(self.q_net.taken(b.obs, b.actions), None, target, b)

    def td_loss(self, q_taken: torch.Tensor, reward_taken: torch.Tensor | None,
                target: torch.Tensor, b: QBatch) -> tuple[torch.Tensor, dict[str, float]]:
        """The (importance-weighted) TD loss of `q_taken` (batch,) against `target`, plus
        with `reward_head` R's regression on the immediate reward (`reward_taken`: R of the
        taken actions)."""
        c = self.config
        self.td_errors = (q_taken.detach() - target).abs().numpy()
        criterion = F.smooth_l1_loss if c.huber else F.mse_loss
        if b.weights is None and reward_taken is None:
            loss = criterion(q_taken, target)
        else:  # importance-weighted: each transition's loss times its weight
            losses = criterion(q_taken, target, reduction="none")
            if reward_taken is not None:  # R regressed on the immediate reward, as the myopic
                losses = losses + criterion(reward_taken, b.rewards, reduction="none")  # twin's
            loss = losses.mean() if b.weights is None else (b.weights * losses).mean()
        return loss, {"loss": loss.item(), "q_mean": q_taken.mean().item()}

    def _check_batch(self, batch: ReplayBatch) -> None:
        """Refuse batches that silently ignore a switch (offline training samples one step,
        uniformly)."""
        c = self.config
        if c.n_step > 1 and batch.discounts is None:
            raise ConfigError(f"n_step = {c.n_step} needs n-step batches from the off-policy "
                              "loop's replay; this batch holds single steps")
        if c.prioritized and batch.weights is None:
            raise ConfigError("prioritized = true needs batches from prioritized replay (the "
                              "off-policy loop); this batch was drawn uniformly")

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
            **({} if self.average is None else {"average": self.average.module.state_dict()}),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore `state_dict()`; a network of other shapes is a `CheckpointError`."""
        load_weights(self.q_net, state["q_net"], "q_net")
        load_weights(self.target_net, state["target_net"], "target_net")
        optimizer = state["optimizer"]
        if isinstance(self.q_net, GroupedRewardFutureQNetwork):  # saved before the grouping?
            optimizer = stack_adam_state(optimizer, len(self.q_net.keys))
        self.optimizer.load_state_dict(optimizer)
        self.updates = int(state["updates"])
        self.epsilon = float(state["epsilon"])
        self.rng.bit_generator.state = state["rng"]
        if self.average is not None:
            if "average" not in state:
                raise CheckpointError("the checkpoint has no averaged weights "
                                      "(trained with policy_average = 0)")
            load_weights(self.average.module, state["average"], "average")
