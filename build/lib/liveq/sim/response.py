"""What watching does: satisfaction, minutes, gifts, comments, patience and coming back.

Satisfaction is what the stream delivers (quality, topic match, a bonus for followed
streamers) minus fatigue from topics watched recently. It sets the share of the step the
viewer keeps watching (never past the stream's end), the gifts and comments they send,
whether they follow, and how much patience they regain: a satisfying watch refills
patience, a disappointing one (clickbait, a tired topic) or opening nothing drains it.
The session ends when patience runs out; its average satisfaction and minutes set the
chance the viewer comes back the next day.
"""

from __future__ import annotations

import numpy as np

from liveq.sim.config import LiveStreamConfig


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def satisfaction(quality: np.ndarray, attract: np.ndarray, match: np.ndarray,
                 followed: np.ndarray, overlap: np.ndarray,
                 cfg: LiveStreamConfig) -> np.ndarray:
    """What the watch delivers; a stream that promised more than it has disappoints."""
    return (quality + cfg.match_weight * match + cfg.follow_bonus * followed
            - cfg.fatigue_weight * np.maximum(overlap, 0.0)
            - cfg.disappointment * np.maximum(attract - quality, 0.0))


def watch_fraction(sat: np.ndarray) -> np.ndarray:
    """Share of the step spent watching, before the stream's end cuts it."""
    return sigmoid(2.0 * sat)


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
             + cfg.return_minutes * np.log1p(minutes / 10.0))
    return sigmoid(logit)
