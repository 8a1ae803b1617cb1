"""The simulator's true expected immediate reward of each candidate (for oracle baselines).

For every candidate shown alone, `E[r | s, a]` sums over the viewer's two outcomes (opens
it or not) the reward each outcome pays now, including the return-visit reward when that
outcome ends the session. It reads hidden state, so only oracle baselines may use it: the
greedy policy on it is the best any one-step policy can do.
"""

from __future__ import annotations

import numpy as np

from liveq.sim import choice, response
from liveq.sim.core import LiveStreamCore


def expected_immediate_reward(core: LiveStreamCore) -> np.ndarray:
    """`(n_sessions, n_candidates)` expected reward; -inf where masked."""
    cfg, v, w = core.cfg, core.viewers, core.cfg.rewards
    k = cfg.n_candidates
    positions = np.broadcast_to(np.arange(k), (core.n, k))
    slate = core.slate_facts(np.where(core.mask, positions, -1))
    util = choice.click_utility(slate.attract, slate.match, slate.followed, slate.current,
                                slate.overlap, cfg)
    p_click = 1.0 / (1.0 + np.exp(cfg.no_click_utility - util))
    sat = response.satisfaction(slate.quality, slate.attract, slate.match, slate.followed,
                                slate.overlap, cfg)
    minutes = response.watched_minutes(response.watch_fraction(sat, cfg), slate.minutes_left,
                                       cfg)
    now = (w.click + w.watch_minute * minutes
           + w.gift * response.gift_rate(sat, minutes, v.gift_propensity[:, None], cfg)
           + w.comment * response.comment_rate(sat, minutes, cfg))
    clicked_end = _return_reward(core, sat, minutes, clicked=True)
    skipped_end = _return_reward(core, np.zeros_like(sat), np.zeros_like(sat), clicked=False)
    value = p_click * (now + clicked_end) + (1.0 - p_click) * skipped_end
    return np.where(core.mask, value, -np.inf)


def _return_reward(core: LiveStreamCore, sat: np.ndarray, minutes: np.ndarray,
                   clicked: bool) -> np.ndarray:
    """Expected return-visit reward if this outcome ends the session, else 0."""
    cfg, v = core.cfg, core.viewers
    hit = np.full(sat.shape, clicked)
    patience = np.minimum(v.patience[:, None] + response.patience_change(sat, hit, cfg),
                          cfg.patience_cap)
    p_back = response.return_probability(v.sat_sum[:, None] + sat, v.step[:, None] + 1,
                                         v.minutes[:, None] + minutes, cfg)
    return cfg.rewards.return_visit * p_back * (patience <= 0)
