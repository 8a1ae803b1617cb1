"""The batched LiveStream core: one platform, many concurrent viewer sessions.

All sessions share one clock and one streamer catalogue, so a stream's viewer count
moves with who joins it. `step` is the recipe: check the slates, let viewers choose,
respond, update streamers and the clock, retrieve the next candidate tables. Sessions that
ended on the previous step restart here (Gymnasium's NEXT_STEP autoreset): their action
is ignored and their reward is 0.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from liveq.core.errors import InvalidActionError
from liveq.sim import choice, response
from liveq.sim.candidates import CANDIDATE_FEATURES, candidate_features, retrieve
from liveq.sim.config import LiveStreamConfig
from liveq.sim.parallel import for_row_chunks
from liveq.sim.streamers import MINUTES_PER_DAY, Streamers
from liveq.sim.viewers import Viewers


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
    clicked_id: np.ndarray  # (n,) -1 when nothing opened
    sat: np.ndarray
    fraction: np.ndarray
    minutes: np.ndarray
    gifts: np.ndarray
    comments: np.ndarray


class LiveStreamCore:
    """Steps `n_sessions` viewer sessions on one simulated platform."""

    def __init__(self, cfg: LiveStreamConfig, n_sessions: int, seed: int | None = None):
        if n_sessions < 1:
            raise ValueError(f"n_sessions must be at least 1, got {n_sessions}")
        self.cfg, self.n = cfg, n_sessions
        self.reset(seed)

    # ---------------------------------------------------------------- lifecycle
    def reset(self, seed: int | None) -> dict[str, np.ndarray]:
        self.rng = np.random.default_rng(np.random.SeedSequence(seed))
        self.tick = 0
        self.start_clock = int(self.rng.integers(0, MINUTES_PER_DAY))
        self.streamers = Streamers(self.cfg, self.rng)
        self._warm_up()
        self.viewers = Viewers(self.cfg, self.n, self.rng)
        veterans = np.flatnonzero(self.rng.random(self.n) < self.cfg.returning_share)
        self.viewers.establish(veterans, self.streamers.topic, self.rng)
        self.needs_reset = np.zeros(self.n, dtype=bool)
        self.streamers.update_live(self.clock)
        self._refresh_candidates()
        return self.observe()

    def _warm_up(self) -> None:
        """Log `warmup_hours` of outside traffic before the first session starts."""
        steps = int(self.cfg.warmup_hours * 60 / self.cfg.step_minutes)
        for back in range(steps, 0, -1):
            self.streamers.update_live(self.clock - int(back * self.cfg.step_minutes))
            self.streamers.log_organic(self.rng)

    @property
    def clock(self) -> int:
        """Platform time in minutes since day 0, 00:00."""
        return self.start_clock + int(self.tick * self.cfg.step_minutes)

    def step(self, actions: np.ndarray) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray, dict]:
        cfg, v = self.cfg, self.viewers
        restarting = self.needs_reset.copy()
        positions = self.check_actions(actions)
        positions[restarting] = -1
        slate = self.slate_facts(positions)
        outcome = self._respond(slate, active=~restarting)
        self.streamers.record(slate.ids, outcome.clicked_id, outcome.fraction)
        terminated = ~restarting & (v.patience <= 0)
        truncated = ~restarting & ~terminated & (v.step >= cfg.max_session_steps)
        ended = terminated | truncated
        p_return = response.return_probability(v.sat_sum, v.step, v.minutes, cfg)
        v.will_return = np.where(ended, self.rng.random(self.n) < p_return, v.will_return)
        reward = self._reward(outcome, terminated & v.will_return)
        info = self._info(slate, outcome, ended, restarting)
        self._advance_world(restarting)
        self.needs_reset = ended
        return self.observe(), reward, terminated, truncated, info

    # ---------------------------------------------------------------- actions
    def check_actions(self, actions: Any) -> np.ndarray:
        """`(n, L)` candidate positions, -1 for ranks left empty."""
        cfg = self.cfg
        arr = np.asarray(actions)
        expected = (self.n,) if cfg.slate_size == 1 else (self.n, cfg.slate_size)
        if arr.shape != expected or not np.issubdtype(arr.dtype, np.integer):
            raise InvalidActionError(
                f"actions must be integers of shape {expected}, got {arr.dtype} {arr.shape}")
        pos = arr.reshape(self.n, cfg.slate_size).astype(np.int64)
        inside = (pos >= 0) & (pos < cfg.n_candidates)
        ok = inside & self.mask[np.arange(self.n)[:, None], np.clip(pos, 0, cfg.n_candidates - 1)]
        bad = ~ok & ~self.needs_reset[:, None]
        if bad.any() and cfg.invalid_action == "error":
            raise InvalidActionError(self._describe_bad(pos, inside, bad))
        return np.where(ok & ~self._is_repeat(pos), pos, -1)

    @staticmethod
    def _is_repeat(pos: np.ndarray) -> np.ndarray:
        """True for every rank whose candidate already appeared at a higher rank.

        Such ranks are left empty: the action space (MultiDiscrete) allows repeats.
        """
        earlier = np.tri(pos.shape[1], k=-1, dtype=bool)[None]
        return ((pos[:, :, None] == pos[:, None, :]) & earlier).any(axis=2)

    def _describe_bad(self, pos: np.ndarray, inside: np.ndarray, bad: np.ndarray) -> str:
        row, rank = (int(i) for i in np.argwhere(bad)[0])
        value, k = int(pos[row, rank]), self.cfg.n_candidates
        why = (f"is out of range [0, {k})" if not inside[row, rank]
               else "is masked (no live streamer in that candidate slot)")
        where = f"session {row}" + (f", rank {rank}" if self.cfg.slate_size > 1 else "")
        return (f"invalid action for {where}: candidate {value} {why}; "
                "pass invalid_action='empty' to treat it as no recommendation")

    # ---------------------------------------------------------------- viewer response
    def slate_facts(self, positions: np.ndarray) -> Slate:
        """Hidden and visible facts of the candidates at `positions (n, L)`."""
        s, v = self.streamers, self.viewers
        rows = np.arange(self.n)[:, None]
        ids = np.where(positions >= 0, self.cand_ids[rows, np.maximum(positions, 0)], -1)
        safe = np.maximum(ids, 0)
        topic = s.topic[safe]
        return Slate(
            ids=ids, attract=s.attract[safe], quality=s.quality[safe],
            match=np.einsum("nld,nd->nl", topic, v.interest),
            overlap=np.einsum("nld,nd->nl", topic, v.recent),
            followed=v.followed(ids).astype(np.float32),
            current=(ids == v.current[:, None]) & (ids >= 0),
            minutes_left=s.minutes_left(safe),
        )

    def _respond(self, slate: Slate, active: np.ndarray) -> Outcome:
        cfg, v, rng = self.cfg, self.viewers, self.rng
        util = choice.click_utility(slate.attract, slate.match, slate.followed, slate.current,
                                    slate.overlap, cfg)
        probs = choice.choice_probabilities(util, slate.ids >= 0, cfg)
        rank = np.where(active, choice.sample_choice(probs, rng), -1)
        hit = rank >= 0
        pick = np.maximum(rank, 0)[:, None]
        take = lambda a: np.take_along_axis(a, pick, axis=1)[:, 0]  # noqa: E731
        sat = np.where(hit, response.satisfaction(take(slate.quality), take(slate.attract),
                                                  take(slate.match),
                                                  take(slate.followed), take(slate.overlap),
                                                  cfg), 0.0)
        fraction = np.where(hit, response.watch_fraction(sat), 0.0)
        minutes = np.where(hit, response.watched_minutes(fraction, take(slate.minutes_left),
                                                         cfg), 0.0)
        gifts = rng.poisson(response.gift_rate(sat, minutes, v.gift_propensity, cfg))
        comments = rng.poisson(response.comment_rate(sat, minutes, cfg))
        outcome = Outcome(np.where(hit, take(slate.ids), -1), sat, fraction, minutes,
                          gifts, comments)
        self._update_viewers(outcome, active)
        return outcome

    def _update_viewers(self, out: Outcome, active: np.ndarray) -> None:
        cfg, v, s = self.cfg, self.viewers, self.streamers
        hit = out.clicked_id >= 0
        change = np.where(active, response.patience_change(out.sat, hit, cfg), 0.0)
        v.patience = np.minimum(v.patience + change, cfg.patience_cap).astype(np.float32)
        rows = np.flatnonzero(hit)
        topic = s.topic[out.clicked_id[rows]]  # (n_hit, topic_dim)
        weight = out.fraction[rows, None].astype(np.float32)
        v.recent *= np.float32(cfg.fatigue_decay)
        v.recent[rows] += weight * topic
        v.profile[rows] += 0.2 * weight * (topic - v.profile[rows])
        drifted = v.interest[rows] + cfg.interest_drift * weight * topic
        v.interest[rows] = drifted / np.linalg.norm(drifted, axis=1, keepdims=True)
        v.add_history(rows, out.clicked_id[rows], out.minutes[rows].astype(np.float32))
        fans = rows[(out.sat[rows] > 1.0) & (self.rng.random(len(rows)) < cfg.follow_prob)]
        v.add_follow(fans, out.clicked_id[fans])
        v.current = np.where(hit, out.clicked_id, np.where(active, -1, v.current))
        v.step += active
        v.minutes += out.minutes.astype(np.float32)
        v.sat_sum += out.sat.astype(np.float32)
        v.clicks += hit
        v.last_click = np.where(active, hit, v.last_click).astype(np.float32)
        v.last_watch = np.where(active, out.fraction, v.last_watch).astype(np.float32)

    def _reward(self, out: Outcome, returning: np.ndarray) -> np.ndarray:
        w = self.cfg.rewards
        return (w.watch_minute * out.minutes + w.click * (out.clicked_id >= 0)
                + w.gift * out.gifts + w.comment * out.comments
                + w.return_visit * returning).astype(np.float64)

    def _info(self, slate: Slate, out: Outcome, ended: np.ndarray,
              restarting: np.ndarray) -> dict[str, np.ndarray]:
        s, shown = self.streamers, slate.ids >= 0
        is_new = (self.tick - s.born_tick[np.maximum(slate.ids, 0)]) * self.cfg.step_minutes
        return {
            "recommended": ~restarting & shown.any(axis=1),
            "shown_ids": slate.ids,
            "clicked": out.clicked_id >= 0,
            "watch_minutes": out.minutes,
            "gifts": out.gifts,
            "comments": out.comments,
            "session_end": ended,
            "will_return": ended & self.viewers.will_return,
            "cold_start_shown": (shown & (is_new < MINUTES_PER_DAY)).sum(axis=1),
        }

    # ---------------------------------------------------------------- world and observation
    def _advance_world(self, restarting: np.ndarray) -> None:
        s, day = self.streamers, self.clock // MINUTES_PER_DAY
        self.tick += 1
        if self.clock // MINUTES_PER_DAY != day:
            s.new_day(self.rng)
        s.replace_offline(self.rng, self.tick)
        s.log_organic(self.rng)
        if restarting.any():
            self.viewers.next_sessions(np.flatnonzero(restarting), self.rng)
        current = self.viewers.current
        s.watchers = np.bincount(current[current >= 0], minlength=self.cfg.n_streamers)
        s.update_live(self.clock)
        self._refresh_candidates()

    def _refresh_candidates(self) -> None:
        s, v = self.streamers, self.viewers
        self.cand_ids = retrieve(self.cfg, s.live, s.viewers, v.follows, self.rng)
        self.mask = self.cand_ids >= 0
        self.topics, self.stats = s.feature_tables(self.tick)

    def pair_features(self, rows: slice = slice(None)) -> np.ndarray:
        """`(n, K, 3)` float32: followed, watching now, log1p(minutes watched before) / 5."""
        v, ids = self.viewers, self.cand_ids[rows]
        out = np.empty((*ids.shape, 3), dtype=np.float32)
        out[:, :, 0] = v.followed(ids, rows)
        out[:, :, 1] = (ids == v.current[rows, None]) & (ids >= 0)
        out[:, :, 2] = np.log1p(v.history_minutes(ids, rows)) / 5.0
        return out

    def observe(self) -> dict[str, np.ndarray]:
        """The batched observation dict for the current clock."""
        v, s = self.viewers, self.streamers
        current_live = (v.current >= 0) & s.live[np.maximum(v.current, 0)]
        viewer = v.feature_matrix(self.clock, current_live)
        table_rows = np.where(self.mask, self.cand_ids, self.cfg.n_streamers)
        cands = np.empty((self.n, self.cfg.n_candidates, len(CANDIDATE_FEATURES)), np.float32)

        def fill(rows: slice) -> None:
            candidate_features(np.take(self.topics, table_rows[rows], axis=0),
                               np.take(self.stats, table_rows[rows], axis=0), viewer[rows],
                               self.pair_features(rows), out=cands[rows])

        for_row_chunks(fill, self.n)
        return {"viewer": viewer, "candidates": cands, "mask": self.mask.astype(np.int8)}

    # ---------------------------------------------------------------- exact resume
    def get_state(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state, "tick": self.tick,
                "start_clock": self.start_clock, "needs_reset": self.needs_reset.copy(),
                "cand_ids": self.cand_ids.copy(), "streamers": self.streamers.state(),
                "viewers": self.viewers.state()}

    def set_state(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.tick, self.start_clock = int(state["tick"]), int(state["start_clock"])
        self.needs_reset = np.array(state["needs_reset"], dtype=bool)
        self.streamers.load_state(state["streamers"])
        self.viewers.load_state(state["viewers"])
        self.cand_ids = np.array(state["cand_ids"], dtype=np.int32)
        self.mask = self.cand_ids >= 0
        self.topics, self.stats = self.streamers.feature_tables(self.tick)
