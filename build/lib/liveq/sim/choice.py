"""Which recommended stream a viewer opens: a conditional logit with position bias.

The viewer compares the streams on the slate with the option of opening nothing. Each
stream's utility mixes how attractive it looks (thumbnail, title: for clickbait this
exceeds the stream's quality), how well its topic matches the viewer, whether the viewer
follows the streamer or is watching it now, and how tired the viewer is of its topic.
Lower positions are seen less: their attraction is multiplied by `position_decay ** rank`.
"""

from __future__ import annotations

import numpy as np

from liveq.sim.config import LiveStreamConfig


def click_utility(attract: np.ndarray, match: np.ndarray, followed: np.ndarray,
                  current: np.ndarray, overlap: np.ndarray, cfg: LiveStreamConfig) -> np.ndarray:
    """Utility of opening each shown stream; all inputs `(n, L)`."""
    return (attract + cfg.match_weight * match + cfg.follow_bonus * followed
            + cfg.current_bonus * current
            - cfg.click_fatigue_share * cfg.fatigue_weight * np.maximum(overlap, 0.0))


def choice_probabilities(utility: np.ndarray, valid: np.ndarray,
                         cfg: LiveStreamConfig) -> np.ndarray:
    """`(n, L + 1)` probabilities; column 0 is "opens nothing", column j + 1 is rank j."""
    n, slate = utility.shape
    rank_bias = np.log(cfg.position_decay) * np.arange(slate) if slate > 1 else 0.0
    logits = np.where(valid, utility + rank_bias, -np.inf)
    logits = np.concatenate([np.full((n, 1), cfg.no_click_utility), logits], axis=1)
    logits -= logits.max(axis=1, keepdims=True)
    weights = np.exp(logits)
    return weights / weights.sum(axis=1, keepdims=True)


def sample_choice(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Chosen rank per row, -1 for "opens nothing"."""
    cumulative = np.cumsum(probs, axis=1)
    draw = rng.random((len(probs), 1)) * cumulative[:, -1:]
    return (draw >= cumulative).sum(axis=1).clip(max=probs.shape[1] - 1) - 1
