"""`liveq/LiveRoom-v0`: interaction guidance inside a live room, as Gymnasium envs.

`LiveRoomVectorEnv` steps n viewers together on `RoomCore`; `LiveRoomEnv` is the batch of
one, so both give the same trajectory from the same seed.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from liveq.core.errors import InvalidActionError
from liveq.sim.batched import CoreVectorEnv, SessionMetrics, check_config_kwargs, config_from
from liveq.sim.room_config import PROMPTS, RoomConfig
from liveq.sim.room_core import OBS_DIM, RoomCore

SEED_BOUND = 2**31 - 1
ROOM_METRICS = SessionMetrics(
    sums=(("gifts", "gifts"), ("gift_value", "gift_value"), ("comments", "comments"),
          ("follows", "follows"), ("prompts", "prompted"), ("early_leave", "left")),
    order=("return", "length", "gifts", "gift_value", "comments", "follows", "prompts",
           "early_leave"))
"""Per stay: minutes (`length`), gifts and their value, comments, follows, prompts shown,
and `early_leave`, 1 when the viewer left before `max_minutes` (its mean is the share of
stays ending early)."""


def make_room_config(config: RoomConfig | dict | None, overrides: dict,
                     path: str = "") -> RoomConfig:
    """A validated config from an object or mapping plus keyword overrides."""
    return config_from(RoomConfig, config, overrides, path)


def check_room_kwargs(kwargs: dict[str, Any], path: str) -> None:
    """Validate a run config's env.kwargs before building the env."""
    check_config_kwargs(RoomConfig, kwargs, path)


def room_spaces() -> tuple[spaces.Box, spaces.Discrete]:
    return (spaces.Box(-1.0, 1.0, shape=(OBS_DIM,), dtype=np.float32),
            spaces.Discrete(len(PROMPTS)))


class LiveRoomEnv(gym.Env):
    """
    ## Description

    One viewer's stay in one streamer's room, minute by minute. Each minute the platform
    shows nothing or one prompt; prompts that fit the viewer (hidden gift propensity,
    chattiness, affinity) and the moment (the streamer's cyclic activity, the viewer's
    hidden mood) raise that action's rate, ignored prompts annoy (more for each ignored
    prompt of the same kind still remembered), and annoyed viewers leave.

    ## Action Space

    `Discrete(5)`: 0 nothing, 1 suggest a gift, 2 invite a comment, 3 suggest following,
    4 point to a highlight. Anything else raises `InvalidActionError`.

    ## Observation Space

    `Box(-1, 1, (16,), float32)`: minutes in room / max_minutes, streamer activity now,
    its change over the next minute, the viewer's recent activity (decayed share of
    minutes with a gift or comment), followed flag, minutes since the last prompt of each
    kind and count of each kind (both / max_minutes, capped at 1), and the viewer's logged
    history (gift rate / 4, comment rate / 4, affinity; noisy, clipped to [0, 1]). Mood,
    annoyance and the true traits are hidden.

    ## Rewards

    `weight_gift * gift value + weight_comment * comments + weight_follow * follows +
    weight_minute` each minute, `- weight_early_leave` in the minute the viewer leaves.

    ## Episode End

    Terminated when the viewer leaves; truncated after `max_minutes`.

    ## Arguments

    `gymnasium.make("liveq/LiveRoom-v0", **RoomConfig fields)` or `config=RoomConfig(...)`.
    """

    metadata = {"render_modes": []}
    check_kwargs = staticmethod(check_room_kwargs)

    def __init__(self, config: RoomConfig | dict | None = None, **overrides: Any):
        self.config = make_room_config(config, overrides)
        self.core = RoomCore(self.config, 1)
        self.observation_space, self.action_space = room_spaces()
        self._ended = True

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        obs = self.core.reset(int(self.np_random.integers(SEED_BOUND)))
        self._ended = False
        return obs[0], {}

    def step(self, action):
        if self._ended:
            raise InvalidActionError("call reset() before step() (the stay has ended or "
                                     "not begun)")
        if not np.issubdtype(np.asarray(action).dtype, np.integer) or np.ndim(action) != 0:
            raise InvalidActionError(f"action must be an integer in [0, {len(PROMPTS)}), "
                                     f"got {action!r}")
        obs, reward, term, trunc, info = self.core.step(np.asarray([action], dtype=np.int64))
        self._ended = bool(term[0] or trunc[0])
        return (obs[0], float(reward[0]), bool(term[0]), bool(trunc[0]),
                {key: value[0] for key, value in info.items()})


class LiveRoomVectorEnv(CoreVectorEnv):
    """
    ## Description

    `num_envs` independent viewers, each in a live room, stepped together by `RoomCore`.
    Spaces, rewards and episode end per viewer are `LiveRoomEnv`'s, batched along a first
    axis; actions are `(num_envs,)` integers in [0, 5).

    ## Episode End

    Per viewer, as `LiveRoomEnv`. Autoreset is Gymnasium's `NEXT_STEP`: a slot that ended
    draws a new viewer on the next `step`, which ignores its action and pays 0.

    ## Starting State

    `reset(seed=s)` seeds `np_random` and draws the core's seed from it, as `LiveRoomEnv`
    does, so a batch of one repeats the single env's trajectory.
    """

    config_class = RoomConfig
    core_class = RoomCore
    session_metrics = ROOM_METRICS
    spaces = staticmethod(lambda _config: room_spaces())
    check_kwargs = staticmethod(check_room_kwargs)
    seed_bound = SEED_BOUND


def register_liveroom() -> None:
    if "liveq/LiveRoom-v0" not in gym.registry:
        gym.register("liveq/LiveRoom-v0", entry_point="liveq.sim.liveroom:LiveRoomEnv",
                     vector_entry_point="liveq.sim.liveroom:LiveRoomVectorEnv")
