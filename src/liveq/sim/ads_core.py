"""The batched numpy core of `liveq/AdPlacement-v0`: `n` independent ad days at once.

Each slot is one stream's ad day: campaigns with daily budgets and cost-per-click bids,
a sequence of viewers (one at a time) and an ad opportunity every
`minutes_per_opportunity`. Everything an env needs (observations, masks, metrics) comes
from here; the Gymnasium classes in `liveq.sim.adplacement` only wrap it.
"""

from __future__ import annotations

import numpy as np

from liveq.core.errors import InvalidActionError
from liveq.sim.ads_config import AdPlacementConfig

CAMPAIGN_COLUMNS = 4  # remaining budget share, pacing error, bid / bid_mean, relevance
CANDIDATE_COLUMNS = CAMPAIGN_COLUMNS + 1  # ... and the "no ad" flag
VIEWER_FIXED = 5  # sin and cos of the time of day, elapsed share, fatigue, log(1 + ads seen)


def viewer_width(cfg: AdPlacementConfig) -> int:
    """Columns of the observation's `viewer` part (see `AdPlacementEnv`)."""
    return 2 * cfg.feature_dim + cfg.n_segments + VIEWER_FIXED


def time_column(cfg: AdPlacementConfig) -> int:
    """The `viewer` column holding the elapsed share of the day."""
    return 2 * cfg.feature_dim + cfg.n_segments + 2


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _unit(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    v = rng.normal(size=shape)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


class AdPlacementCore:
    """`n` ad days stepped together; `reset(seed)` draws all worlds from one generator."""

    METRICS = ("impressions", "clicks", "conversions", "revenue", "conversion_value",
               "lost_minutes", "watch_minutes")

    def __init__(self, config: AdPlacementConfig, n: int):
        self.cfg, self.n = config, n
        self.rng = np.random.default_rng(0)
        self.needs_reset = np.ones(n, dtype=bool)

    # -- worlds and viewers ---------------------------------------------------------
    def reset(self, seed: int) -> np.ndarray:
        self.rng = np.random.default_rng(seed)
        self.needs_reset[:] = True
        self._reset_slots(np.ones(self.n, dtype=bool))
        return self.observe()

    def _reset_slots(self, idx: np.ndarray) -> None:
        """A fresh day (campaigns, stream, first viewer) for the slots in `idx`."""
        cfg, rng, k = self.cfg, self.rng, int(idx.sum())
        c, d = cfg.n_campaigns, cfg.feature_dim
        if not hasattr(self, "topic"):
            self._allocate()
        self.topic[idx] = _unit(rng, (k, c, d))
        self.hidden[idx] = rng.normal(0.0, cfg.ctr_hidden_scale, (k, c))
        self.bid[idx] = cfg.bid_mean * rng.uniform(0.5, 1.5, (k, c))
        self.budget[idx] = cfg.budget_mean * rng.uniform(0.5, 1.5, (k, c))
        self.value[idx] = cfg.conversion_value_mean * rng.uniform(0.5, 1.5, (k, c))
        target = rng.random((k, c, cfg.n_segments)) < cfg.targeting_share
        target[np.arange(k)[:, None], np.arange(c)[None], rng.integers(cfg.n_segments,
                                                                      size=(k, c))] = True
        self.target[idx] = target
        self.stream[idx] = _unit(rng, (k, d))
        self.spent[idx] = 0.0
        self.clock[idx] = 0.0
        for name in self.METRICS:
            self.totals[name][idx] = 0.0
        self._new_viewers(idx)
        self.needs_reset[idx] = False

    def _allocate(self) -> None:
        n, c, d, s = self.n, self.cfg.n_campaigns, self.cfg.feature_dim, self.cfg.n_segments
        self.topic = np.zeros((n, c, d))
        self.hidden, self.bid, self.budget, self.value, self.spent = (
            np.zeros((n, c)) for _ in range(5))
        self.target = np.zeros((n, c, s), dtype=bool)
        self.stream, self.viewer = np.zeros((n, d)), np.zeros((n, d))
        self.segment = np.zeros(n, dtype=np.int64)
        self.clock, self.planned_end, self.recent, self.session_ads = (
            np.zeros(n) for _ in range(4))
        self.totals = {name: np.zeros(n) for name in self.METRICS}

    def _new_viewers(self, idx: np.ndarray) -> None:
        cfg, rng, k = self.cfg, self.rng, int(idx.sum())
        self.viewer[idx] = _unit(self.rng, (k, cfg.feature_dim))
        self.segment[idx] = rng.integers(cfg.n_segments, size=k)
        stay = np.maximum(rng.exponential(cfg.mean_session_minutes, k),
                          cfg.minutes_per_opportunity)
        self.planned_end[idx] = self.clock[idx] + stay
        self.recent[idx] = 0.0
        self.session_ads[idx] = 0.0

    # -- what the agent sees ----------------------------------------------------------
    def relevance(self) -> np.ndarray:
        """Observable viewer-and-stream match with each campaign's topic, in [-1, 1]."""
        context = 0.5 * (self.viewer + self.stream)
        return np.einsum("nd,ncd->nc", context, self.topic)

    def mask(self) -> np.ndarray:
        """`(n, n_campaigns + 1)`: campaigns with budget left that target the viewer; the
        last action (no ad) is always allowed."""
        targeted = self.target[np.arange(self.n), :, self.segment]
        allowed = targeted & (self.budget - self.spent > 1e-9)
        return np.concatenate([allowed, np.ones((self.n, 1), dtype=bool)], axis=1)

    def elapsed(self) -> np.ndarray:
        return np.minimum(self.clock / self.cfg.day_minutes, 1.0)

    def observe(self) -> dict[str, np.ndarray]:
        """LiveStream's layout: `viewer` (the moment), `candidates` (one row per action, the
        last "no ad") and `mask`, so item-conditioned learners score every campaign with
        one shared head and never choose a masked one."""
        cfg, e = self.cfg, self.elapsed()
        seg = np.eye(cfg.n_segments)[self.segment]
        phase = 2 * np.pi * e
        viewer = np.concatenate([self.viewer, self.stream, seg, np.sin(phase)[:, None],
                                 np.cos(phase)[:, None], e[:, None], self.recent[:, None],
                                 np.log1p(self.session_ads)[:, None]], axis=1)
        share_left = 1.0 - self.spent / self.budget
        pacing = self.spent / self.budget - e[:, None]
        campaigns = np.stack([share_left, pacing, self.bid / cfg.bid_mean, self.relevance(),
                              np.zeros_like(pacing)], axis=2)
        no_ad = np.zeros((self.n, 1, CANDIDATE_COLUMNS))
        no_ad[:, :, -1] = 1.0
        return {"viewer": viewer.astype(np.float32),
                "candidates": np.concatenate([campaigns, no_ad], axis=1).astype(np.float32),
                "mask": self.mask().astype(np.int8)}

    def click_probability(self) -> np.ndarray:
        """True `(n, n_campaigns)` CTR (hidden from the agent): relevance, the campaign's
        creative quality and the time of day (evening prime time)."""
        cfg = self.cfg
        prime = cfg.prime_time_gain * np.clip(3.0 * self.elapsed() - 1.0, 0.0, 1.0)
        logit = cfg.ctr_base + cfg.ctr_relevance * self.relevance() + self.hidden
        return _sigmoid(logit + prime[:, None])

    # -- one opportunity --------------------------------------------------------------
    def check_actions(self, actions: np.ndarray, ignore: np.ndarray | None = None) -> np.ndarray:
        """Integer campaign indices, `n_campaigns` meaning no ad; masked ones become "no ad"
        or raise, per `invalid_action`. Slots in `ignore` (restarting days) show no ad
        whatever their (still checked) action."""
        a = np.asarray(actions)
        c = self.cfg.n_campaigns
        if not np.issubdtype(a.dtype, np.integer) or a.shape != (self.n,):
            raise InvalidActionError(f"actions must be {self.n} integers, got {actions!r}")
        if ((a < 0) | (a > c)).any():
            raise InvalidActionError(f"actions must be in [0, {c}], got {a.tolist()}")
        if ignore is not None:
            a = np.where(ignore, c, a)
        ok = self.mask()[np.arange(self.n), a]
        if not ok.all():
            if self.cfg.invalid_action == "raise":
                bad = np.flatnonzero(~ok).tolist()
                raise InvalidActionError(f"masked campaign (out of budget or not targeting "
                                         f"the viewer) in slots {bad}")
            a = np.where(ok, a, c)
        return a

    def step(self, actions: np.ndarray):
        """Show the chosen ads; returns obs, reward, terminated, truncated, info."""
        restart = self.needs_reset.copy()
        a = self.check_actions(actions, ignore=restart)
        reward, info = self._show(a)
        if restart.any():  # NEXT_STEP autoreset: the ended day's slot starts a new day
            self._reset_slots(restart)
            reward[restart] = 0.0
        terminated = self.clock >= self.cfg.day_minutes - 1e-9
        self.needs_reset = terminated.copy()
        info["pacing_error"] = self.pacing_error()
        info["budget_spent_share"] = self.spent.sum(axis=1) / self.budget.sum(axis=1)
        info["action_mask"] = self.mask()
        return (self.observe(), reward, terminated, np.zeros(self.n, dtype=bool), info)

    def _show(self, a: np.ndarray) -> tuple[np.ndarray, dict]:
        cfg, rng, rows = self.cfg, self.rng, np.arange(self.n)
        shown = a < cfg.n_campaigns
        camp = np.where(shown, a, 0)
        p_click = self.click_probability()[rows, camp]
        u_click, u_conv, u_leave = rng.random(self.n), rng.random(self.n), rng.random(self.n)
        clicked = shown & (u_click < p_click)
        remaining = self.budget[rows, camp] - self.spent[rows, camp]
        cost = np.where(clicked, np.minimum(self.bid[rows, camp], remaining), 0.0)
        self.spent[rows, camp] += cost
        p_conv = _sigmoid(cfg.cvr_base + self.relevance()[rows, camp])
        converted = clicked & (u_conv < p_conv)
        self.recent = self.recent * cfg.fatigue_decay + shown
        self.session_ads += shown
        p_leave = np.minimum(cfg.leave_base + cfg.leave_per_ad * self.recent, 1.0)
        left = u_leave < p_leave
        step_end = np.minimum(self.clock + cfg.minutes_per_opportunity, self.planned_end)
        lost = np.where(left, np.maximum(
            np.minimum(self.planned_end, cfg.day_minutes) - step_end, 0.0), 0.0)
        watched = step_end - self.clock
        self.clock = np.where(left, np.maximum(self.planned_end, step_end), step_end)
        ended = left | (self.clock >= self.planned_end - 1e-9)
        if ended.any():
            self._new_viewers(ended)
        events = {"impressions": shown * 1.0, "clicks": clicked * 1.0,
                  "conversions": converted * 1.0, "revenue": cost,
                  "conversion_value": converted * self.value[rows, camp],
                  "lost_minutes": lost, "watch_minutes": watched}
        for name, value in events.items():
            self.totals[name] += value
        reward = cost - cfg.minute_value * lost
        info = {**events, "left": left}
        return reward, info

    def pacing_error(self) -> np.ndarray:
        """Mean absolute gap between each campaign's spent budget share and the elapsed
        share of the day (0 is perfectly even pacing)."""
        return np.abs(self.spent / self.budget - self.elapsed()[:, None]).mean(axis=1)

    def metrics(self) -> dict[str, np.ndarray]:
        """Per-slot day totals so far plus CTR, CVR, ROI (conversion value per spend) and
        the pacing error."""
        t = self.totals
        out = {name: value.copy() for name, value in t.items()}
        out["ctr"] = t["clicks"] / np.maximum(t["impressions"], 1.0)
        out["cvr"] = t["conversions"] / np.maximum(t["clicks"], 1.0)
        out["roi"] = t["conversion_value"] / np.maximum(t["revenue"], 1e-9)
        out["budget_spent_share"] = self.spent.sum(axis=1) / self.budget.sum(axis=1)
        out["pacing_error"] = self.pacing_error()
        return out
