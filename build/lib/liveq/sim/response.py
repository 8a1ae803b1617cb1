"""What the viewers do with a slate: which stream they open and what watching does.

`respond` is the whole response of one step, drawn without touching any state: the choice
(see `choice`), then satisfaction, watched minutes, gifts, comments and follows. Updating
the viewers from the outcome is a separate, explicit step (`Viewers.update`).

Satisfaction is what the stream delivers (quality, topic match, a bonus for followed
streamers) minus fatigue from topics watched recently. It sets the share of the step the
viewer keeps watching (never past the stream's end), the gifts and comments they send,
whether they follow, and how much patience they regain: a satisfying watch refills
patience, a disappointing one (clickbait, a tired topic) or opening nothing drains it.
The session ends when patience runs out; its average satisfaction and minutes set the
chance the viewer comes back the next day.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from liveq.core.numerics import sigmoid
from liveq.sim import choice
from liveq.sim.config import LiveStreamConfig


class Slate(NamedTuple):
    """What the viewer sees: per-rank facts, all `(n, L)`; ids are -1 for empty ranks."""

    ids: np.ndarray
    attract: np.ndarray
    quality: np.ndarray
    match: np.ndarray
    overlap: np.ndarray
    followed: np.ndarray
    current: np.ndarray
    minutes_left: np.ndarray


class Outcome(NamedTuple):
    """What each viewer did this step, all `(n,)`."""

    clicked_id: np.ndarray  # streamer opened, -1 when nothing
    sat: np.ndarray  # satisfaction of the watch, 0 when nothing opened
    fraction: np.ndarray  # share of the step watched
    minutes: np.ndarray  # minutes watched
    gifts: np.ndarray
    comments: np.ndarray
    follow_id: np.ndarray  # streamer followed after the watch, -1 when none


def respond(slate: Slate, active: np.ndarray, gift_propensity: np.ndarray,
            cfg: LiveStreamConfig, rng: np.random.Generator) -> Outcome:
    """Draw every viewer's response to `slate`; rows not `active` do nothing."""
    util = choice.click_utility(slate.attract, slate.match, slate.followed, slate.current,
                                slate.overlap, cfg)
    probs = choice.choice_probabilities(util, slate.ids >= 0, cfg)
    rank = np.where(active, choice.sample_choice(probs, rng), -1)
    hit = rank >= 0
    pick = np.maximum(rank, 0)[:, None]
    take = lambda a: np.take_along_axis(a, pick, axis=1)[:, 0]  # noqa: E731
    sat = np.where(hit, satisfaction(take(slate.quality), take(slate.attract),
                                     take(slate.match), take(slate.followed),
                                     take(slate.overlap), cfg), 0.0)
    fraction = np.where(hit, watch_fraction(sat, cfg), 0.0)
    minutes = np.where(hit, watched_minutes(fraction, take(slate.minutes_left), cfg), 0.0)
    gifts = rng.poisson(gift_rate(sat, minutes, gift_propensity, cfg))
    comments = rng.poisson(comment_rate(sat, minutes, cfg))
    clicked_id = np.where(hit, take(slate.ids), -1)
    rows = np.flatnonzero(hit)
    fans = rows[(sat[rows] > cfg.follow_satisfaction)
                & (rng.random(len(rows)) < cfg.follow_prob)]
    follow_id = np.full(len(rank), -1, dtype=clicked_id.dtype)
    follow_id[fans] = clicked_id[fans]
    return Outcome(clicked_id, sat, fraction, minutes, gifts, comments, follow_id)


def satisfaction(quality: np.ndarray, attract: np.ndarray, match: np.ndarray,
                 followed: np.ndarray, overlap: np.ndarray,
                 cfg: LiveStreamConfig) -> np.ndarray:
    """What the watch delivers; a stream that promised more than it has disappoints."""
    return (quality + cfg.match_weight * match + cfg.follow_bonus * followed
            - cfg.fatigue_weight * np.maximum(overlap, 0.0)
            - cfg.disappointment * np.maximum(attract - quality, 0.0))


def watch_fraction(sat: np.ndarray, cfg: LiveStreamConfig) -> np.ndarray:
    """Share of the step spent watching, before the stream's end cuts it."""
    return sigmoid(cfg.watch_slope * sat)


def watched_minutes(fraction: np.ndarray, minutes_left: np.ndarray,
                    cfg: LiveStreamConfig) -> np.ndarray:
    return np.minimum(fraction * cfg.step_minutes, minutes_left)


def gift_rate(sat: np.ndarray, minutes: np.ndarray, propensity: np.ndarray,
              cfg: LiveStreamConfig) -> np.ndarray:
    """Poisson mean of gifts sent during the watch."""
    return cfg.gift_rate * propensity * np.maximum(sat, 0.0) * minutes / cfg.step_minutes


def comment_rate(sat: np.ndarray, minutes: np.ndarray, cfg: LiveStreamConfig) -> np.ndarray:
    """Poisson mean of comments written during the watch."""
    return cfg.comment_rate * np.maximum(sat, 0.0) * minutes / cfg.step_minutes


def patience_change(sat: np.ndarray, clicked: np.ndarray, cfg: LiveStreamConfig) -> np.ndarray:
    gain = cfg.satisfaction_refill * (sat - cfg.satisfaction_threshold)
    return np.where(clicked, gain, -cfg.no_click_cost) - cfg.step_cost


def return_probability(sat_sum: np.ndarray, steps: np.ndarray, minutes: np.ndarray,
                       cfg: LiveStreamConfig) -> np.ndarray:
    """Chance of a session tomorrow; steps with nothing opened count as zero satisfaction."""
    mean_sat = sat_sum / np.maximum(steps, 1)
    logit = (cfg.return_bias + cfg.return_satisfaction * mean_sat
             + cfg.return_minutes * np.log1p(minutes / cfg.return_minutes_unit))
    return sigmoid(logit)
