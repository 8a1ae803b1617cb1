"""The batched numpy core of `liveq/LiveRoom-v0`: n viewers, each in one live room.

Each minute a policy may prompt a viewer (suggest a gift, invite a comment, suggest
following, point to a highlight). A prompt multiplies its action's rate by how well it
fits the viewer (hidden gift propensity, chattiness, affinity to the streamer) and the
moment (the streamer's cyclic activity, the viewer's hidden mood). A prompt that the viewer
ignores annoys, more for each ignored prompt of that kind still remembered; annoyance
decays, lowers mood and raises the leaving hazard. A follow lowers the hazard for the rest
of the stay and a highlight lifts mood, so both pay off only later.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from liveq.core.errors import InvalidActionError
from liveq.sim.room_config import PROMPTS, RoomConfig

N_KINDS = len(PROMPTS) - 1
OBS_DIM = 8 + 2 * N_KINDS
GIFT, COMMENT, FOLLOW, HIGHLIGHT = range(N_KINDS)
MOOD_PULL, MOOD_NOISE, MOOD_ANNOYANCE = 0.1, 0.05, 0.1


class RoomCore:
    """State of `n` viewer slots as arrays; `reset(seed)` then `step(actions)`."""

    def __init__(self, config: RoomConfig, n: int):
        config.validate()
        self.config, self.n = config, n
        self.rng = np.random.default_rng(0)
        self.needs_reset = np.ones(n, dtype=bool)
        self.gift_prop, self.chatty, self.affinity, self.phase = np.zeros((4, n))
        self.history = np.zeros((n, 3))
        self.mood, self.annoyance, self.recent, self.minute = np.zeros((4, n))
        self.followed = np.zeros(n, dtype=bool)
        self.ignored = np.zeros((n, N_KINDS))
        self.since = np.zeros((n, N_KINDS))
        self.counts = np.zeros((n, N_KINDS))

    def reset(self, seed: int) -> np.ndarray:
        self.rng = np.random.default_rng(seed)
        self._start(np.ones(self.n, dtype=bool))
        return self.observe()

    def _start(self, rows: np.ndarray) -> None:
        """Draw fresh viewers (hidden traits, logged history) into the slots `rows`."""
        k, rng = int(rows.sum()), self.rng
        if k == 0:
            return
        self.gift_prop[rows] = rng.lognormal(-0.32, 0.8, k)  # mean 1
        self.chatty[rows] = rng.lognormal(-0.18, 0.6, k)  # mean 1
        self.affinity[rows] = rng.random(k)
        self.phase[rows] = rng.random(k) * self.config.activity_period
        noise = rng.normal(size=(k, 3))
        self.history[rows] = np.clip(np.stack([
            self.gift_prop[rows] / 4 * np.exp(0.3 * noise[:, 0]),
            self.chatty[rows] / 4 * np.exp(0.3 * noise[:, 1]),
            self.affinity[rows] + 0.15 * noise[:, 2]], axis=1), 0.0, 1.0)
        self.mood[rows] = rng.uniform(0.3, 0.7, k)
        for arr in (self.annoyance, self.recent, self.minute, self.ignored, self.counts):
            arr[rows] = 0.0
        self.since[rows] = self.config.max_minutes
        self.followed[rows] = False
        self.needs_reset[rows] = False

    def activity(self, offset: float = 0.0) -> np.ndarray:
        """The streamer's activity in [0, 1] at each slot's current minute plus `offset`."""
        angle = 2 * np.pi * (self.minute + offset + self.phase) / self.config.activity_period
        return 0.5 + 0.5 * np.sin(angle)

    def observe(self) -> np.ndarray:
        """`(n, OBS_DIM)` float32, every feature in [-1, 1] (see `LiveRoomEnv`)."""
        cap = self.config.max_minutes
        act = self.activity()
        cols = [self.minute / cap, act, self.activity(1.0) - act, self.recent,
                self.followed.astype(float)]
        obs = np.concatenate([np.stack(cols, axis=1), np.minimum(self.since, cap) / cap,
                              np.minimum(self.counts, cap) / cap, self.history], axis=1)
        return obs.astype(np.float32)

    def fit(self, activity: np.ndarray) -> np.ndarray:
        """`(n, N_KINDS)` how well each prompt fits each viewer now, in [0, 1]."""
        moment = activity * (0.5 + self.mood)
        return np.clip(np.stack([self.gift_prop / 2 * moment, self.chatty / 2 * moment,
                                 self.affinity * moment * ~self.followed, activity],
                                axis=1), 0.0, 1.0)

    def step(self, actions: Any) -> tuple:
        actions = self._check(actions)
        restart = self.needs_reset.copy()
        cfg, rng, rows = self.config, self.rng, np.arange(self.n)
        act = self.activity()
        kind = np.where(restart, 0, actions) - 1  # -1: no prompt
        prompted = kind >= 0
        lift = np.ones((self.n, N_KINDS))
        lift[rows[prompted], kind[prompted]] += (cfg.prompt_lift
                                                 * self.fit(act)[rows[prompted], kind[prompted]])
        moment = (0.5 + act) * (0.5 + self.mood)
        p = np.stack([cfg.gift_rate * self.gift_prop * moment * lift[:, GIFT],
                      cfg.comment_rate * self.chatty * moment * lift[:, COMMENT],
                      cfg.follow_rate * self.affinity * moment * lift[:, FOLLOW] * ~self.followed,
                      act], axis=1)
        done = rng.random((self.n, N_KINDS)) < np.clip(p, 0.0, 1.0)
        gift, comment, follow = done[:, GIFT], done[:, COMMENT], done[:, FOLLOW]
        value = np.where(gift, rng.exponential(cfg.gift_value, self.n), 0.0)
        fit = self.fit(act)[rows, np.maximum(kind, 0)]
        self._annoy(kind, prompted, done[rows, np.maximum(kind, 0)], fit)
        self.mood = np.clip(self.mood + MOOD_PULL * (0.5 - self.mood)
                            + MOOD_NOISE * rng.normal(size=self.n)
                            - MOOD_ANNOYANCE * self.annoyance
                            + cfg.highlight_mood * act * (1 - self.mood) * (kind == HIGHLIGHT),
                            0.0, 1.0)
        self.followed |= follow
        hazard = (cfg.leave_rate * (1.5 - self.mood) * (1 - cfg.follow_retention * self.followed)
                  + cfg.annoyance_leave * self.annoyance)
        left = rng.random(self.n) < np.clip(hazard, 0.0, 1.0)
        self.recent = 0.7 * self.recent + 0.3 * (gift | comment)
        self.minute += 1
        truncated = ~left & (self.minute >= cfg.max_minutes)
        reward = (cfg.weight_gift * value + cfg.weight_comment * comment
                  + cfg.weight_follow * follow + cfg.weight_minute
                  - cfg.weight_early_leave * left)
        live = ~restart
        info = {"gifts": gift & live, "gift_value": value * live, "comments": comment & live,
                "follows": follow & live, "prompted": prompted, "left": left & live}
        terminated, truncated = left & live, truncated & live
        self.needs_reset = terminated | truncated
        self._start(restart)  # a new viewer at minute 0, as `reset` gives the single env
        return self.observe(), np.where(live, reward, 0.0), terminated, truncated, info

    def _annoy(self, kind: np.ndarray, prompted: np.ndarray, answered: np.ndarray,
               fit: np.ndarray) -> None:
        """Decay annoyance and memories, then charge each ignored prompt by how badly it
        fitted, times one plus the ignored prompts of its kind still remembered."""
        cfg, rows = self.config, np.arange(self.n)
        self.annoyance *= cfg.annoyance_decay
        self.ignored *= cfg.annoyance_decay
        self.since += 1
        ignored = prompted & ~answered
        r, k = rows[ignored], kind[ignored]
        self.annoyance[r] += cfg.annoyance_ignored * (1 - fit[r]) * (1 + self.ignored[r, k])
        self.ignored[r, k] += 1
        self.since[rows[prompted], kind[prompted]] = 0
        self.counts[rows[prompted], kind[prompted]] += 1

    def _check(self, actions: Any) -> np.ndarray:
        arr = np.asarray(actions)
        if (arr.shape != (self.n,) or not np.issubdtype(arr.dtype, np.integer)
                or (arr < 0).any() or (arr >= len(PROMPTS)).any()):
            raise InvalidActionError(f"actions must be {self.n} integers in [0, {len(PROMPTS)}) "
                                     f"({', '.join(PROMPTS)}), got {actions!r}")
        return arr.astype(np.int64)


def measured_rates(config: RoomConfig, n_viewers: int = 4000,
                   seed: int = 0) -> tuple[float, float]:
    """(gifts, comments) per viewer-minute when nobody is ever prompted."""
    core = RoomCore(config, n_viewers)
    core.reset(seed)
    gifts = comments = minutes = 0.0
    for _ in range(config.max_minutes):
        minutes += (~core.needs_reset).sum()  # restarting slots watch nothing this step
        info = core.step(np.zeros(n_viewers, dtype=np.int64))[4]
        gifts, comments = gifts + info["gifts"].sum(), comments + info["comments"].sum()
    return gifts / minutes, comments / minutes


def fit_rates(config: RoomConfig, gifts_per_minute: float, comments_per_minute: float,
              n_viewers: int = 4000, seed: int = 0, rounds: int = 3) -> RoomConfig:
    """`config` with `gift_rate` and `comment_rate` scaled so that, unprompted, viewers
    give `gifts_per_minute` gifts and `comments_per_minute` comments per viewer-minute (the
    rates of a KuaiLive-format log). Leaving does not depend on these rates, so scaling is
    exact up to sampling noise and the clip at probability 1; `rounds` repeats it."""
    fitted = replace(config)
    for _ in range(rounds):
        gifts, comments = measured_rates(fitted, n_viewers, seed)
        fitted = replace(fitted, gift_rate=min(1.0, fitted.gift_rate * gifts_per_minute
                                               / max(gifts, 1e-12)),
                         comment_rate=min(1.0, fitted.comment_rate * comments_per_minute
                                          / max(comments, 1e-12)))
    fitted.validate()
    return fitted
