"""Gymnasium envs over the batched core: `liveq/LiveStream-v0` and its vector form.

## Description
A live-streaming platform. Each step the agent recommends one live stream (or a ranked
list of `slate_size`) to a viewer from a table of live candidates; the viewer opens one or
none and watches. A session ends when the viewer's patience runs out.

## Observation space
`Dict`:
* `viewer` `Box(float32, (2 * topic_dim + 10,))`: the logged interest profile, recent topic
  exposure, then time of day (sin, cos), session step, log session minutes, clicked last
  step, watch share last step, follows, new viewer, log days active, watching a live stream.
* `candidates` `Box(float32, (n_candidates, 11))`: per candidate, topic match with the
  profile, overlap with recent topics, followed, watching now, log minutes watched before,
  log viewers, estimated CTR, estimated watch share, log impressions (confidence), hours
  live, new streamer.
* `mask` `MultiBinary(n_candidates)`: 1 where a live streamer fills the slot.

## Action space
`Discrete(n_candidates)` (`slate_size == 1`) or `MultiDiscrete([n_candidates] * slate_size)`,
ranks in order. A masked or out-of-range candidate raises `InvalidActionError` unless
`invalid_action="empty"`, which leaves that rank empty; a candidate repeated lower in the
slate is shown once (the repeat's rank stays empty).

## Rewards
`rewards.watch_minute * minutes + rewards.click * opened + rewards.gift * gifts
+ rewards.comment * comments + rewards.return_visit * (session ended and viewer returns)`.

## Episode end
Terminated when patience runs out; truncated after `max_session_steps` steps (no return
reward then). Resetting without a seed starts the next session on the same platform: the
same viewer if they came back, otherwise a new one.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector.utils import batch_space

from liveq.core.config import from_dict, to_dict
from liveq.sim.candidates import CANDIDATE_FEATURES
from liveq.sim.config import LiveStreamConfig
from liveq.sim.core import LiveStreamCore
from liveq.sim.viewers import VIEWER_FEATURES


def make_config(config: LiveStreamConfig | dict | None, overrides: dict) -> LiveStreamConfig:
    """A validated config from an object or mapping plus keyword overrides."""
    base = to_dict(config) if isinstance(config, LiveStreamConfig) else dict(config or {})
    return from_dict(LiveStreamConfig, {**base, **overrides})


# Every feature is a share, a unit-vector product or a scaled logarithm; recent-topic
# exposure is at most 1 / (1 - fatigue_decay). This bound is loose but true.
FEATURE_BOUND = 100.0


def spaces_for(cfg: LiveStreamConfig) -> tuple[spaces.Dict, spaces.Space]:
    k, bound = cfg.n_candidates, max(FEATURE_BOUND, 2.0 / (1.0 - cfg.fatigue_decay + 1e-6))
    obs = spaces.Dict({
        "viewer": spaces.Box(-bound, bound, (2 * cfg.topic_dim + len(VIEWER_FEATURES),),
                             np.float32),
        "candidates": spaces.Box(-bound, bound, (k, len(CANDIDATE_FEATURES)), np.float32),
        "mask": spaces.MultiBinary(k),
    })
    act = spaces.Discrete(k) if cfg.slate_size == 1 else spaces.MultiDiscrete(
        [k] * cfg.slate_size)
    return obs, act


class LiveStreamEnv(gym.Env):
    """One viewer session at a time on a simulated live-streaming platform (batch of one)."""

    metadata = {"render_modes": []}

    def __init__(self, config: LiveStreamConfig | dict | None = None, **overrides: Any):
        self.config = make_config(config, overrides)
        self.observation_space, self.action_space = spaces_for(self.config)
        self.core: LiveStreamCore | None = None

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None or self.core is None:
            world_seed = int(self.np_random.integers(2**63))
            self.core = LiveStreamCore(self.config, 1, seed=world_seed)
            obs = self.core.observe()
        else:
            self.core.needs_reset[:] = True
            obs = self.core.step(self._empty_action())[0]
        return _first(obs), {}

    def step(self, action):
        if self.core is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        batched = np.asarray(action, dtype=np.int64)[None]
        obs, reward, terminated, truncated, info = self.core.step(batched)
        return (_first(obs), float(reward[0]), bool(terminated[0]), bool(truncated[0]),
                _first(info))

    def _empty_action(self) -> np.ndarray:
        return np.zeros((1,) if self.config.slate_size == 1 else (1, self.config.slate_size),
                        dtype=np.int64)


def _first(batch: dict[str, np.ndarray]) -> dict[str, Any]:
    return {key: value[0] for key, value in batch.items()}


class LiveStreamVectorEnv(gym.vector.VectorEnv):
    """`n_envs` concurrent sessions on one platform, stepped together by the numpy core."""

    metadata = {"render_modes": [], "autoreset_mode": gym.vector.AutoresetMode.NEXT_STEP}

    def __init__(self, num_envs: int = 1, config: LiveStreamConfig | dict | None = None,
                 **overrides: Any):
        self.config = make_config(config, overrides)
        self.num_envs = n_envs = num_envs
        self.single_observation_space, self.single_action_space = spaces_for(self.config)
        self.observation_space = batch_space(self.single_observation_space, n_envs)
        self.action_space = batch_space(self.single_action_space, n_envs)
        self.core = LiveStreamCore(self.config, n_envs)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self._np_random, self._np_random_seed = gym.utils.seeding.np_random(seed)
        world_seed = None if seed is None else int(self.np_random.integers(2**63))
        return self.core.reset(world_seed), {}

    def step(self, actions):
        return self.core.step(np.asarray(actions))

    def get_state(self) -> dict[str, Any]:
        """Everything needed to continue bit for bit (see `set_state`)."""
        return self.core.get_state()

    def set_state(self, state: dict[str, Any]) -> dict[str, np.ndarray]:
        """Restore a `get_state` snapshot; returns the observation at that point."""
        self.core.set_state(state)
        return self.core.observe()

    def make_replay_codec(self, capacity: int):
        from liveq.sim.codec import LiveStreamCodec
        return LiveStreamCodec(self.core, capacity)
