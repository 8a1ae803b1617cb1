"""Experience replay in preallocated numpy arrays, with pluggable observation codecs.

The buffer never sees raw observations: an `ObsCodec` turns what the env returned into a
few compact fixed-shape fields (`encode`), and turns sampled fields back into batched
observations for the network (`decode`). `ArrayCodec` and `DictCodec` store observations
as they are; an env with a cheaper representation (the LiveStream env stores candidate
streamer ids and the clock tick, and rebuilds candidate features from its per-tick
streamer table) offers its own codec through `vec_env.make_replay_codec(capacity)`.

Each stored transition is `(obs, action, reward, next_obs, terminated, truncated)`.
Truncated transitions keep `terminated = False` so their target still bootstraps from
`next_obs`. With `n_step > 1` a sample is the n-step transition that starts at the drawn
row, assembled from the same env's later rows (`liveq.buffers.nstep`); the prioritized
variant draws rows by priority (`liveq.buffers.prioritized`).

Every vector step takes `n_envs` slots, including the rows of envs that were autoreset
on that step: those are flagged invalid and never sampled. The buffer therefore always
spans the last `capacity / n_envs` steps, which lets a codec keep per-step tables in a
ring of that many steps; the price is a few unused slots (one per finished episode).
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

import gymnasium as gym
import numpy as np

from liveq.buffers.nstep import n_step_returns
from liveq.core.config import ConfigError
from liveq.policies.base import Obs

Fields = dict[str, tuple[tuple[int, ...], np.dtype]]


class ObsCodec(Protocol):
    """Turns batched observations into stored fields and back."""

    fields: Fields  # field name -> (per-transition shape, dtype)

    def encode(self, obs: Obs, infos: dict[str, Any]) -> dict[str, np.ndarray]:
        """Arrays `(n_envs, *shape)` for the obs the env just returned with these infos."""
        ...

    def decode(self, stored: dict[str, np.ndarray]) -> Obs:
        """Fields `(batch, *shape)` -> batched observation for the network."""
        ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class ArrayCodec:
    """Box observations stored as they are, in one field `obs`."""

    def __init__(self, space: gym.spaces.Box):
        self.fields: Fields = {"obs": (tuple(space.shape), np.dtype(space.dtype))}

    def encode(self, obs: np.ndarray, infos: dict[str, Any]) -> dict[str, np.ndarray]:
        return {"obs": np.array(obs)}  # a copy: some envs reuse their output buffers

    def decode(self, stored: dict[str, np.ndarray]) -> np.ndarray:
        return stored["obs"]

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class DictCodec:
    """Dict observations of Box/MultiBinary parts, one stored field per key."""

    def __init__(self, space: gym.spaces.Dict):
        self.fields: Fields = {}
        for key, sub in space.spaces.items():
            if not isinstance(sub, (gym.spaces.Box, gym.spaces.MultiBinary)):
                raise ConfigError(
                    f"observation '{key}': replay stores Box or MultiBinary parts, "
                    f"got {type(sub).__name__}"
                )
            self.fields[key] = (tuple(sub.shape), np.dtype(sub.dtype))

    def encode(self, obs: dict[str, np.ndarray], infos: dict[str, Any]) -> dict[str, np.ndarray]:
        return {key: np.array(obs[key]) for key in self.fields}

    def decode(self, stored: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {key: stored[key] for key in self.fields}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


def make_codec(vec_env: gym.vector.VectorEnv, capacity: int) -> ObsCodec:
    """The env's own codec when it offers one, else one matching its observation space."""
    factory = getattr(vec_env, "make_replay_codec", None)
    if factory is not None:
        return factory(capacity)
    space = vec_env.single_observation_space
    if isinstance(space, gym.spaces.Box):
        return ArrayCodec(space)
    if isinstance(space, gym.spaces.Dict):
        return DictCodec(space)
    raise ConfigError(f"replay: no codec for observation space {type(space).__name__}")


class ReplayBatch(NamedTuple):
    obs: Obs  # batched observation, first axis = batch
    actions: np.ndarray  # (batch, *action_shape) int64
    rewards: np.ndarray  # (batch,) float32; the n-step return when `discounts` is set
    next_obs: Obs  # batched observation to bootstrap from
    terminated: np.ndarray  # (batch,) float32, 1.0 where the episode ended for real
    discounts: np.ndarray | None = None  # (batch,) float32 factor on the bootstrap value
    # (gamma^k, 0 after a termination); None: one step, the learner uses its own gamma
    weights: np.ndarray | None = None  # (batch,) float32 importance weights (prioritized)
    indices: np.ndarray | None = None  # (batch,) int64 buffer rows, to update priorities


class Priorities(NamedTuple):
    """Proportional prioritized replay (Schaul et al. 2016): P(i) = p_i^alpha / sum p^alpha,
    p_i = |TD error| + eps, importance-weight exponent beta annealed over training."""

    alpha: float
    beta_start: float
    beta_end: float
    eps: float


class ReplaySchedule(NamedTuple):
    """How an off-policy learner uses replay; step counts are env steps summed over envs."""

    batch_size: int  # transitions per gradient step
    buffer_size: int  # replay capacity in transitions
    learning_starts: int  # env steps collected before the first gradient step
    train_freq: int  # env steps between two rounds of gradient steps
    gradient_steps: int  # gradient steps per round
    n_step: int = 1  # steps summed into each transition's return
    gamma: float = 1.0  # discount of the n-step sum (unused when n_step == 1)
    priorities: Priorities | None = None  # prioritized replay's settings; None = uniform



class ReplayBuffer:
    """Fixed-capacity circular buffer of transitions, stored as codec fields; with
    `n_step > 1` it samples n-step transitions discounted by `gamma`."""

    def __init__(self, codec: ObsCodec, capacity: int, action_shape: tuple[int, ...] = (),
                 *, n_step: int = 1, gamma: float = 1.0):
        if capacity < 1:
            raise ConfigError(f"replay capacity must be at least 1, got {capacity}")
        if n_step < 1:
            raise ConfigError(f"n_step must be at least 1, got {n_step}")
        self.codec = codec
        self.capacity = capacity
        self.n_step, self.gamma = n_step, gamma
        self.obs = {k: np.zeros((capacity, *s), d) for k, (s, d) in codec.fields.items()}
        self.next_obs = {k: np.zeros((capacity, *s), d) for k, (s, d) in codec.fields.items()}
        self.actions = np.zeros((capacity, *action_shape), np.int64)
        self.rewards = np.zeros(capacity, np.float32)
        self.terminated = np.zeros(capacity, np.float32)
        self.truncated = np.zeros(capacity, bool)
        self.valid = np.zeros(capacity, bool)  # False: autoreset row, never sampled
        self.pos = 0  # next slot to write
        self.size = 0  # number of filled slots, valid or not
        self.stride = 0  # rows per add (the env count): an env's next row is `stride` on;
        # -1 once adds of different sizes make that unknown (n-step sampling then refuses)

    def __len__(self) -> int:
        """Number of valid (sampleable) transitions."""
        return int(self.valid[: self.size].sum())

    def add(self, obs: dict[str, np.ndarray], actions: np.ndarray, rewards: np.ndarray,
            next_obs: dict[str, np.ndarray], terminated: np.ndarray, valid: np.ndarray,
            truncated: np.ndarray | None = None) -> int:
        """Store one vector step; rows with `valid == False` (autoreset steps) are never sampled.

        `obs` and `next_obs` are codec encodings `(n_envs, *shape)`; `truncated` (default
        none) ends n-step windows without cutting the bootstrap. Returns how many valid
        transitions were stored.
        """
        valid = np.asarray(valid, dtype=bool)[-self.capacity:]
        n = len(valid)
        rows = slice(-n, None)  # the newest rows when one step exceeds the capacity
        slots = (self.pos + np.arange(n)) % self.capacity
        for key in self.obs:
            self.obs[key][slots] = obs[key][rows]
            self.next_obs[key][slots] = next_obs[key][rows]
        self.actions[slots] = np.asarray(actions)[rows]
        self.rewards[slots] = np.asarray(rewards)[rows]
        self.terminated[slots] = np.asarray(terminated)[rows]
        self.truncated[slots] = False if truncated is None else np.asarray(truncated)[rows]
        self.valid[slots] = valid
        self.pos = int((self.pos + n) % self.capacity)
        self.size = min(self.size + n, self.capacity)
        self.stride = n if self.stride in (0, n) else -1
        self._written(slots, valid)
        return int(valid.sum())

    def _written(self, slots: np.ndarray, valid: np.ndarray) -> None:
        """Hook for subclasses that index rows (the prioritized buffer's sum-tree)."""

    def sample(self, batch_size: int, rng: np.random.Generator) -> ReplayBatch:
        """Uniform sample with replacement of `batch_size` valid transitions."""
        if not self.valid[: self.size].any():
            raise ValueError("cannot sample from an empty replay buffer")
        idx = rng.integers(0, self.size, size=batch_size)
        redraw = ~self.valid[idx]
        while redraw.any():  # rejection keeps the draw uniform over valid slots
            idx[redraw] = rng.integers(0, self.size, size=int(redraw.sum()))
            redraw = ~self.valid[idx]
        return self.batch(idx)

    def batch(self, idx: np.ndarray) -> ReplayBatch:
        """The transitions that start at rows `idx`: one step, or n-step windows."""
        if self.n_step == 1:
            obs, next_obs = self.decode_pair(idx, idx)
            return ReplayBatch(obs=obs, actions=self.actions[idx], rewards=self.rewards[idx],
                               next_obs=next_obs, terminated=self.terminated[idx])
        window = self.windows(idx)  # (batch, n) rows
        ends = self.truncated[window] | (self.terminated[window] > 0)
        ends |= np.arange(self.n_step)[None, :] >= self.steps_stored(idx)[:, None] - 1
        nstep = n_step_returns(self.rewards[window], self.terminated[window] > 0, ends,
                               self.gamma)
        last = window[np.arange(len(idx)), nstep.last]
        obs, next_obs = self.decode_pair(idx, last)
        return ReplayBatch(obs=obs, actions=self.actions[idx], rewards=nstep.returns,
                           next_obs=next_obs, terminated=self.terminated[last],
                           discounts=nstep.discounts)

    def decode_pair(self, rows: np.ndarray, next_rows: np.ndarray) -> tuple[Obs, Obs]:
        """The observations of `rows` and the next observations of `next_rows`, decoded in
        one call of the codec (each call has a fixed cost; a sample needs both halves)."""
        both = self.codec.decode({k: np.concatenate([v[rows], self.next_obs[k][next_rows]])
                                  for k, v in self.obs.items()})
        n = len(rows)
        if isinstance(both, dict):
            return {k: v[:n] for k, v in both.items()}, {k: v[n:] for k, v in both.items()}
        return both[:n], both[n:]

    def windows(self, idx: np.ndarray) -> np.ndarray:
        """Rows (batch, n_step) of the same env's steps from `idx` on (rows past the newest
        write are wrapped indices, cut off by `steps_stored`)."""
        if self.stride < 1:
            raise ValueError("n-step replay needs every add to hold the same number of envs")
        return (idx[:, None] + self.stride * np.arange(self.n_step)[None, :]) % self.capacity

    def steps_stored(self, idx: np.ndarray) -> np.ndarray:
        """How many steps of the same env are stored from each row of `idx` on, itself
        included."""
        age = (self.pos - 1 - idx) % self.capacity + 1  # rows written since, itself included
        return (age - 1) // self.stride + 1

    def nbytes(self) -> int:
        """Bytes held by the preallocated arrays (codec-side storage not included)."""
        arrays = [*self.obs.values(), *self.next_obs.values(),
                  self.actions, self.rewards, self.terminated, self.truncated, self.valid]
        return int(sum(a.nbytes for a in arrays))

    def state_dict(self) -> dict[str, Any]:
        """Everything needed for an exact resume; only the filled part of the arrays."""
        n = self.size
        return {
            "capacity": self.capacity,
            "pos": self.pos,
            "size": n,
            "obs": {k: v[:n].copy() for k, v in self.obs.items()},
            "next_obs": {k: v[:n].copy() for k, v in self.next_obs.items()},
            "actions": self.actions[:n].copy(),
            "rewards": self.rewards[:n].copy(),
            "terminated": self.terminated[:n].copy(),
            "truncated": self.truncated[:n].copy(),
            "valid": self.valid[:n].copy(),
            "stride": self.stride,
            "codec": self.codec.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["capacity"] != self.capacity:
            raise ValueError(
                f"replay capacity {self.capacity} does not match saved {state['capacity']}"
            )
        n = int(state["size"])
        for key in self.obs:
            self.obs[key][:n] = np.asarray(state["obs"][key])
            self.next_obs[key][:n] = np.asarray(state["next_obs"][key])
        self.actions[:n] = np.asarray(state["actions"])
        self.rewards[:n] = np.asarray(state["rewards"])
        self.terminated[:n] = np.asarray(state["terminated"])
        self.valid[:n] = np.asarray(state["valid"])
        # Checkpoints from before n-step replay have neither; they only ever sampled 1 step.
        self.truncated[:n] = np.asarray(state.get("truncated", np.zeros(n, bool)))
        self.stride = int(state.get("stride", 0))
        self.pos, self.size = int(state["pos"]), n
        self.codec.load_state_dict(state["codec"])
