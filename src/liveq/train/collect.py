"""One collection step, shared by online training and by logging transitions offline.

    step = collector.step(policy)     act, env.step, (store), track episodes

Vector envs autoreset on the step after an episode ends (Gymnasium NEXT_STEP): that
step's action is ignored and its row is not a transition, so it is marked invalid
(`Step.valid`) and never learned from. `terminated` and `truncated` stay apart: only a
real termination cuts the bootstrap. With a `ReplayWriter`, every step goes into a
replay buffer through the env's codec, each observation encoded once.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np

from liveq.buffers.replay import ObsCodec, ReplayBatch, ReplayBuffer
from liveq.policies.base import Obs, Policy


class Step(NamedTuple):
    """One vector step; every array has the env count as first axis."""

    obs: Obs
    actions: np.ndarray
    rewards: np.ndarray
    next_obs: Obs
    terminated: np.ndarray
    truncated: np.ndarray
    valid: np.ndarray  # False where the slot was autoreset: not a transition
    ended_returns: np.ndarray  # returns of the episodes that ended on this step

    @property
    def done(self) -> np.ndarray:
        """Slots whose episode ended on this step."""
        return (self.terminated | self.truncated) & self.valid

    def transitions(self) -> ReplayBatch:
        """The valid rows as a batch (observations: arrays or dicts of arrays)."""
        v = self.valid
        return ReplayBatch(_rows(self.obs, v), np.asarray(self.actions)[v],
                           np.asarray(self.rewards)[v], _rows(self.next_obs, v),
                           np.asarray(self.terminated, dtype=np.float32)[v])


def _rows(obs: Obs, keep: np.ndarray) -> Obs:
    """The rows `keep` of a batched observation (an array or a dict of arrays)."""
    if isinstance(obs, dict):
        return {key: np.asarray(value)[keep] for key, value in obs.items()}
    return np.asarray(obs)[keep]


class ReplayWriter:
    """Stores each step in a replay buffer, encoding every observation once."""

    def __init__(self, codec: ObsCodec, buffer: ReplayBuffer):
        self.codec, self.buffer = codec, buffer
        self.encoded: dict[str, np.ndarray] = {}  # codec fields of the current observation

    def start(self, obs: Obs, infos: dict[str, Any]) -> None:
        self.encoded = self.codec.encode(obs, infos)

    def add(self, step: Step, infos: dict[str, Any]) -> int:
        """Store `step`; returns how many valid transitions it held."""
        next_encoded = self.codec.encode(step.next_obs, infos)
        stored = self.buffer.add(self.encoded, step.actions, step.rewards, next_encoded,
                                 step.terminated, step.valid, step.truncated)
        self.encoded = next_encoded
        return stored


class Collector:
    """A vector env, its current observation and the returns of its open episodes."""

    def __init__(self, env: gym.vector.VectorEnv, writer: ReplayWriter | None = None):
        self.env, self.writer = env, writer
        self.obs: Obs = None
        self.prev_done = np.zeros(env.num_envs, dtype=bool)  # slot ended on the last step
        self.episode_returns = np.zeros(env.num_envs)  # (n_envs,) so far, open episodes

    def reset(self, seed: int) -> None:
        self.obs, infos = self.env.reset(seed=seed)
        if self.writer is not None:
            self.writer.start(self.obs, infos)
        self.prev_done[:] = False
        self.episode_returns[:] = 0.0

    def step(self, policy: Policy) -> Step:
        """Act with `policy` on the current observation and step the env once."""
        actions = policy.act(self.obs).actions
        next_obs, rewards, terminated, truncated, infos = self.env.step(actions)
        valid = ~self.prev_done
        self.episode_returns += np.where(valid, rewards, 0.0)
        done = (terminated | truncated) & valid
        step = Step(self.obs, actions, rewards, next_obs, terminated, truncated, valid,
                    self.episode_returns[done].copy())
        if self.writer is not None:
            self.writer.add(step, infos)
        self.episode_returns[done] = 0.0
        self.prev_done = done
        self.obs = next_obs
        return step

    def state_dict(self) -> dict[str, Any]:
        """Observation, episode bookkeeping and, when the env offers it, its state."""
        get_state = getattr(self.env, "get_state", None)
        return {"obs": self.obs, "prev_done": self.prev_done.copy(),
                "episode_returns": self.episode_returns.copy(),
                "encoded": self.writer.encoded if self.writer is not None else None,
                "env": get_state() if get_state is not None else None}

    def load_state_dict(self, state: dict[str, Any]) -> bool:
        """Restore the env and the open episodes; False when the env cannot be restored
        (no `set_state` or no saved state): the caller then resets it."""
        set_state = getattr(self.env, "set_state", None)
        if set_state is None or state["env"] is None:
            return False
        set_state(state["env"])
        self.obs = state["obs"]
        self.prev_done = np.asarray(state["prev_done"], dtype=bool).copy()
        self.episode_returns = np.asarray(state["episode_returns"], dtype=np.float64).copy()
        if self.writer is not None:
            self.writer.encoded = state["encoded"]
        return True
