"""Gymnasium envs over the ad core: `liveq/AdPlacement-v0` and its vector form.

`AdPlacementEnv` is one ad day (a batch of one); `AdPlacementVectorEnv` steps `num_envs`
independent ad days with the numpy core in `liveq.sim.ads_core`.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from liveq.core.errors import InvalidActionError
from liveq.sim.ads_config import AdPlacementConfig
from liveq.sim.ads_core import CANDIDATE_COLUMNS, AdPlacementCore, viewer_width
from liveq.sim.batched import (
    SEED_BOUND,
    CoreVectorEnv,
    SessionMetrics,
    check_config_kwargs,
    config_from,
)

OBS_BOUND = 50.0  # unit vectors, shares, log counts and a decayed ad count (< 1/(1-decay))


AD_METRICS = SessionMetrics(
    sums=(("revenue", "revenue"), ("impressions", "impressions"), ("clicks", "clicks"),
          ("conversions", "conversions"), ("conversion_value", "conversion_value"),
          ("lost_minutes", "lost_minutes"), ("watch_minutes", "watch_minutes")),
    ratios=(("ctr", "clicks", "impressions"), ("cvr", "conversions", "clicks"),
            ("roi", "conversion_value", "revenue")),
    step_means=(("pacing_error", "pacing_error"),),
    finals=(("budget_spent", "budget_spent_share"),),
    order=("return", "revenue", "impressions", "ctr", "cvr", "roi", "budget_spent",
           "pacing_error", "lost_minutes", "length"))
"""The ad metrics of the issue per day: revenue, CTR, CVR, ROI (conversion value per
spend), the share of the day's budgets spent, the pacing error (mean over the day's
opportunities of |spent share - elapsed share|) and the watch minutes lost to early exits."""


def make_config(config: AdPlacementConfig | dict | None, overrides: dict,
                path: str = "") -> AdPlacementConfig:
    """A validated config from an object or mapping plus keyword overrides."""
    return config_from(AdPlacementConfig, config, overrides, path)


def check_kwargs(kwargs: dict[str, Any], path: str) -> None:
    """Validate an env's keyword arguments before building it (a run config's env.kwargs)."""
    check_config_kwargs(AdPlacementConfig, kwargs, path)


def spaces_for(cfg: AdPlacementConfig) -> tuple[spaces.Dict, spaces.Discrete]:
    bound = max(OBS_BOUND, 2.0 / (1.0 - cfg.fatigue_decay + 1e-6))
    actions = cfg.n_campaigns + 1
    obs = spaces.Dict({
        "viewer": spaces.Box(-bound, bound, (viewer_width(cfg),), np.float32),
        "candidates": spaces.Box(-bound, bound, (actions, CANDIDATE_COLUMNS), np.float32),
        "mask": spaces.MultiBinary(actions),
    })
    return obs, spaces.Discrete(actions)


def _first(batch: dict[str, np.ndarray]) -> dict[str, Any]:
    return {key: value[0] for key, value in batch.items()}


class AdPlacementEnv(gym.Env):
    """
    ## Description

    One live stream's ad day. Viewers watch one after another; every
    `minutes_per_opportunity` minutes the agent may show one campaign's ad to the viewer
    or none. Campaigns pay their cost-per-click bid on a click, never beyond their daily
    budget. Ads tire viewers: each recent ad raises the chance the viewer leaves, which
    loses the rest of their planned stay (watch minutes) and the ad opportunities in it.
    Clicks are likelier in the evening (the last two thirds of the day ramp up to
    `prime_time_gain`), so a budget spent in the morning misses the best traffic.

    ## Action Space

    `Discrete(n_campaigns + 1)`: a campaign index, or `n_campaigns` for no ad. A campaign
    is masked when its budget is spent or it does not target the viewer's segment; the
    mask is the observation's `mask` and `info["action_mask"]`.
    A masked action shows no ad (`invalid_action="none"`, the default, so an unmasked
    learner can run) or raises `InvalidActionError` (`invalid_action="raise"`).

    ## Observation Space

    `Dict` in LiveStream's layout (so item-conditioned learners score every action with one
    shared head and honour the mask, as on LiveStream and the shop):
    * `viewer` `Box(float32, (2 * feature_dim + n_segments + 5,))`: viewer topic, stream
      topic, viewer segment one-hot, time of day (sin, cos, elapsed share), recent-ad
      fatigue count, log(1 + ads this session).
    * `candidates` `Box(float32, (n_campaigns + 1, 5))`: per campaign its remaining budget
      share, pacing state (spent share minus elapsed share), bid / `bid_mean`, observable
      relevance to the viewer and stream, and 0; the last row is "no ad" (zeros, then 1).
    * `mask` `MultiBinary(n_campaigns + 1)`: 1 where the action is allowed.

    ## Rewards

    Platform revenue (the clicked campaign's spend) minus `minute_value` x watch minutes
    lost when a viewer leaves early.

    ## Starting State

    `reset(seed=s)` draws a new day (campaigns, budgets, bids, targeting, stream, first
    viewer) from `s`; `reset()` without a seed draws the next day from the same generator.

    ## Episode End

    Terminated when the day's clock reaches `day_minutes`; never truncated. Stepping after
    the end without `reset()` raises `InvalidActionError`. `info` holds the step's
    impressions, clicks, conversions, revenue, conversion value, lost and watched minutes,
    the pacing error, the share of the day's budgets spent and the next action mask;
    `core.metrics()` gives day totals with CTR, CVR and ROI.
    """

    metadata = {"render_modes": []}

    check_kwargs = staticmethod(check_kwargs)

    def __init__(self, config: AdPlacementConfig | dict | None = None, **overrides: Any):
        self.config = make_config(config, overrides)
        self.observation_space, self.action_space = spaces_for(self.config)
        self.core = AdPlacementCore(self.config, 1)
        self._built = self._ended = False

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        obs = self.core.reset(int(self.np_random.integers(SEED_BOUND)))
        self._built, self._ended = True, False
        return _first(obs), {"action_mask": self.core.mask()[0]}

    def step(self, action):
        if not self._built or self._ended:
            raise InvalidActionError("call reset() before step() (the day has ended or "
                                     "not started)")
        arr = np.asarray(action)
        if not np.issubdtype(arr.dtype, np.integer) or arr.shape != ():
            raise InvalidActionError(f"action must be an integer, got {action!r}")
        obs, reward, terminated, truncated, info = self.core.step(arr[None])
        self._ended = bool(terminated[0])
        return (_first(obs), float(reward[0]), bool(terminated[0]), bool(truncated[0]),
                {key: value[0] for key, value in info.items()})


class AdPlacementVectorEnv(CoreVectorEnv):
    """
    `num_envs` independent ad days stepped together (spaces, rewards and episode end as
    `AdPlacementEnv`, batched on a first axis). Autoreset is Gymnasium's `NEXT_STEP`: a
    day that ended restarts on the next `step`, which ignores its action and pays 0.
    `reset(seed=s)` seeds `np_random` and draws the worlds from it.
    """

    config_class = AdPlacementConfig
    core_class = AdPlacementCore
    session_metrics = AD_METRICS
    spaces = staticmethod(spaces_for)
    check_kwargs = staticmethod(check_kwargs)

    def reset_info(self) -> dict:
        return {"action_mask": self.core.mask()}
