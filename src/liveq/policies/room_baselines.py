"""Baselines for `liveq/LiveRoom-v0` that a live-room operations team would run.

* `never`: never prompt (the platform's status quo);
* `schedule`: a prompt every `every` minutes, rotating gift, comment, follow, highlight;
* `moment`: a one-step rule that prompts when the observed moment is good (the streamer
  is near peak activity and no prompt came in the last few minutes) with the prompt whose
  fit, estimated from the viewer's logged history, is highest now.

They read only the observation (layout in `LiveRoomEnv`); none looks ahead.
"""

from __future__ import annotations

from abc import abstractmethod

import gymnasium as gym
import numpy as np

from liveq.policies.base import GreedyPolicy, Obs, action_mask
from liveq.sim.room_config import PROMPTS

MINUTE, ACTIVITY, FOLLOWED = 0, 1, 4
SINCE = slice(5, 9)
HIST_GIFT, HIST_CHAT, HIST_AFFINITY = 13, 14, 15


class RoomPolicy(GreedyPolicy):
    """A deterministic live-room rule: `choose(obs)` gives one action per row."""

    def __init__(self, max_minutes: int):
        self.max_minutes = max_minutes

    def allowed(self, obs: Obs, mask: np.ndarray | None = None) -> np.ndarray:
        return action_mask(obs, mask, len(PROMPTS))

    @abstractmethod
    def choose(self, obs: np.ndarray) -> np.ndarray:
        """`(n_envs,)` int64 actions in [0, 5) for a `(n_envs, 16)` observation batch."""

    def scores(self, obs: Obs, mask: np.ndarray | None = None) -> np.ndarray:
        obs = np.asarray(obs)
        allowed = self.allowed(obs, mask)
        out = np.where(allowed, 0.0, -np.inf)
        rows = np.arange(len(obs))
        chosen = self.choose(obs)
        out[rows, chosen] = np.where(allowed[rows, chosen], 1.0, -np.inf)
        return out


class NeverPrompt(RoomPolicy):
    def choose(self, obs: np.ndarray) -> np.ndarray:
        return np.zeros(len(obs), dtype=np.int64)


class FixedSchedule(RoomPolicy):
    """Prompt at minutes every, 2 * every, ...; kinds rotate 1, 2, 3, 4, 1, ..."""

    def __init__(self, max_minutes: int, every: int = 5):
        super().__init__(max_minutes)
        self.every = every

    def choose(self, obs: np.ndarray) -> np.ndarray:
        minute = np.rint(obs[:, MINUTE] * self.max_minutes).astype(np.int64)
        due = (minute > 0) & (minute % self.every == 0)
        kind = (minute // self.every - 1) % (len(PROMPTS) - 1) + 1
        return np.where(due, kind, 0)


class GoodMoment(RoomPolicy):
    """Prompt when activity is at least `threshold` and the last prompt is at least `gap`
    minutes old, with the kind of highest estimated fit (history traits times activity)."""

    def __init__(self, max_minutes: int, threshold: float = 0.75, gap: int = 3):
        super().__init__(max_minutes)
        self.threshold, self.gap = threshold, gap

    def choose(self, obs: np.ndarray) -> np.ndarray:
        act = obs[:, ACTIVITY]
        fit = np.stack([2 * obs[:, HIST_GIFT] * act, 2 * obs[:, HIST_CHAT] * act,
                        obs[:, HIST_AFFINITY] * act * (1 - obs[:, FOLLOWED]), 0.5 * act], axis=1)
        quiet = obs[:, SINCE].min(axis=1) * self.max_minutes >= self.gap
        good = quiet & (act >= self.threshold)
        return np.where(good, np.argmax(fit, axis=1) + 1, 0)


def _minutes(env: gym.vector.VectorEnv) -> int:
    config = getattr(env.unwrapped, "config", None)
    if not hasattr(config, "max_minutes"):
        raise ValueError("the live-room baselines need a liveq/LiveRoom env")
    return int(config.max_minutes)


ROOM_BASELINES = {
    "never": lambda env, seed: NeverPrompt(_minutes(env)),
    "schedule": lambda env, seed: FixedSchedule(_minutes(env)),
    "moment": lambda env, seed: GoodMoment(_minutes(env)),
}
