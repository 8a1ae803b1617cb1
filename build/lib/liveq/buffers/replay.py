"""Experience replay in preallocated numpy arrays, with pluggable observation codecs.

The buffer never sees raw observations: an `ObsCodec` turns what the env returned into a
few compact fixed-shape fields (`encode`), and turns sampled fields back into batched
observations for the network (`decode`). `ArrayCodec` and `DictCodec` store observations
as they are; an env with a cheaper representation (the LiveStream env stores candidate
streamer ids and the clock tick, and rebuilds candidate features from its per-tick
streamer table) offers its own codec through `vec_env.make_replay_codec(capacity)`.

Each stored transition is `(obs, action, reward, next_obs, terminated)`. Truncated
transitions keep `terminated = False` so their target still bootstraps from `next_obs`.

Every vector step takes `n_envs` slots, including the rows of envs that were autoreset
on that step: those are flagged invalid and never sampled. The buffer therefore always
spans the last `capacity / n_envs` steps, which lets a codec keep per-step tables in a
ring of that many steps; the price is a few unused slots (one per finished episode).
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

import gymnasium as gym
import numpy as np

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
    rewards: np.ndarray  # (batch,) float32
    next_obs: Obs  # batched observation after the action
    terminated: np.ndarray  # (batch,) float32, 1.0 where the episode ended for real


class ReplaySchedule(NamedTuple):
    """How an off-policy learner uses replay; step counts are env steps summed over envs."""

    batch_size: int  # transitions per gradient step
    buffer_size: int  # replay capacity in transitions
    learning_starts: int  # env steps collected before the first gradient step
    train_freq: int  # env steps between two rounds of gradient steps
    gradient_steps: int  # gradient steps per round


class ReplayBuffer:
    """Fixed-capacity circular buffer of transitions, stored as codec fields."""

    def __init__(self, codec: ObsCodec, capacity: int, action_shape: tuple[int, ...] = ()):
        if capacity < 1:
            raise ConfigError(f"replay capacity must be at least 1, got {capacity}")
        self.codec = codec
        self.capacity = capacity
        self.obs = {k: np.zeros((capacity, *s), d) for k, (s, d) in codec.fields.items()}
        self.next_obs = {k: np.zeros((capacity, *s), d) for k, (s, d) in codec.fields.items()}
        self.actions = np.zeros((capacity, *action_shape), np.int64)
        self.rewards = np.zeros(capacity, np.float32)
        self.terminated = np.zeros(capacity, np.float32)
        self.valid = np.zeros(capacity, bool)  # False: autoreset row, never sampled
        self.pos = 0  # next slot to write
        self.size = 0  # number of filled slots, valid or not

    def __len__(self) -> int:
        """Number of valid (sampleable) transitions."""
        return int(self.valid[: self.size].sum())

    def add(self, obs: dict[str, np.ndarray], actions: np.ndarray, rewards: np.ndarray,
            next_obs: dict[str, np.ndarray], terminated: np.ndarray, valid: np.ndarray) -> int:
        """Store one vector step; rows with `valid == False` (autoreset steps) are never sampled.

        `obs` and `next_obs` are codec encodings `(n_envs, *shape)`; returns how many
        valid transitions were stored.
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
        self.valid[slots] = valid
        self.pos = int((self.pos + n) % self.capacity)
        self.size = min(self.size + n, self.capacity)
        return int(valid.sum())

    def sample(self, batch_size: int, rng: np.random.Generator) -> ReplayBatch:
        """Uniform sample with replacement of `batch_size` valid transitions."""
        if not self.valid[: self.size].any():
            raise ValueError("cannot sample from an empty replay buffer")
        idx = rng.integers(0, self.size, size=batch_size)
        redraw = ~self.valid[idx]
        while redraw.any():  # rejection keeps the draw uniform over valid slots
            idx[redraw] = rng.integers(0, self.size, size=int(redraw.sum()))
            redraw = ~self.valid[idx]
        return ReplayBatch(
            obs=self.codec.decode({k: v[idx] for k, v in self.obs.items()}),
            actions=self.actions[idx],
            rewards=self.rewards[idx],
            next_obs=self.codec.decode({k: v[idx] for k, v in self.next_obs.items()}),
            terminated=self.terminated[idx],
        )

    def nbytes(self) -> int:
        """Bytes held by the preallocated arrays (codec-side storage not included)."""
        arrays = [*self.obs.values(), *self.next_obs.values(),
                  self.actions, self.rewards, self.terminated, self.valid]
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
            "valid": self.valid[:n].copy(),
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
        self.pos, self.size = int(state["pos"]), n
        self.codec.load_state_dict(state["codec"])
