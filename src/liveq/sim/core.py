"""The batched LiveStream core: one platform, many concurrent viewer sessions.

All sessions share one clock and one streamer catalogue, so a stream's viewer count
moves with who joins it. `step` is the recipe, RecSim-style: check the slates, show them,
let the viewers respond (`response.respond`, no side effects), update the viewers from the
response, log what the platform saw, end sessions, move the world and the clock on, and
observe. Sessions that ended on the previous step restart here (Gymnasium's NEXT_STEP
autoreset): their action is ignored and their reward is 0.

A core is built empty and gets its world from `reset(seed)`; it owns a thread pool for
large batches, released by `close()`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from liveq.core.errors import ConfigError, InvalidActionError
from liveq.core.units import MINUTES_PER_DAY
from liveq.features.schema import NEW_STREAMER_MINUTES, candidate_width
from liveq.features.streamer import candidate_features, count_engagement, pair_features
from liveq.features.viewer import is_followed, viewer_features
from liveq.sim import response
from liveq.sim.candidates import retrieve
from liveq.sim.config import LiveStreamConfig
from liveq.sim.memory import check_memory
from liveq.sim.parallel import RowPool
from liveq.sim.response import Outcome, Slate
from liveq.sim.streamers import Streamers
from liveq.sim.viewers import Viewers

__all__ = ["InvalidActionError", "LiveStreamCore", "Outcome", "Slate"]


class LiveStreamCore:
    """Steps `n_sessions` viewer sessions on one simulated platform."""

    def __init__(self, cfg: LiveStreamConfig, n_sessions: int):
        if n_sessions < 1:
            raise ConfigError(f"n_envs (sessions) must be at least 1, got {n_sessions}")
        check_memory(cfg, n_sessions)
        self.cfg, self.n = cfg, n_sessions
        self.pool = RowPool(cfg.sim_threads)
        self.rng: np.random.Generator | None = None  # set, with the world, by reset()

    # ---------------------------------------------------------------- lifecycle
    def reset(self, seed: int) -> dict[str, np.ndarray]:
        """Build the world from `seed`: streamers, their logged past, the first sessions."""
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

    def close(self) -> None:
        """Release the thread pool (the world stays usable; a later step restarts it)."""
        self.pool.close()

    def _warm_up(self) -> None:
        """Log `warmup_hours` of outside traffic before the first session starts."""
        steps = int(self.cfg.warmup_hours * 60 / self.cfg.step_minutes)
        for back in range(steps, 0, -1):
            self.streamers.update_live(self.clock - int(back * self.cfg.step_minutes))
            self.streamers.log(self.streamers.organic_traffic(self.rng))

    @property
    def clock(self) -> int:
        """Platform time in minutes since day 0, 00:00."""
        return self.start_clock + int(self.tick * self.cfg.step_minutes)

    def step(self, actions: np.ndarray) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray, dict]:
        if self.rng is None:
            raise InvalidActionError("call reset() before step(): the world is built there")
        restarting = self.needs_reset.copy()
        positions = self.check_actions(actions)
        positions[restarting] = -1
        return self._play(self.slate_facts(positions), restarting)

    def step_ids(self, ids: Any) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray, dict]:
        """`step` with slates of streamer ids chosen outside the simulator (a service).

        `ids` is `(n, slate_size)` integers, -1 for an empty rank; every other id must be a
        live streamer, at most once per row. Rows of sessions that restart here are ignored,
        as `step` ignores their actions. The world moves on exactly as in `step`.
        """
        if self.rng is None:
            raise InvalidActionError("call reset() before step_ids(): the world is built there")
        restarting = self.needs_reset.copy()
        slate_ids = self.check_ids(ids)
        slate_ids[restarting] = -1
        return self._play(self.slate_of(slate_ids), restarting)

    def check_ids(self, ids: Any) -> np.ndarray:
        """`(n, L)` int64 streamer ids, checked: live, distinct per row, -1 for empty."""
        arr = np.asarray(ids)
        expected = (self.n, self.cfg.slate_size)
        if arr.shape != expected or not np.issubdtype(arr.dtype, np.integer):
            raise InvalidActionError(
                f"ids must be integers of shape {expected}, got {arr.dtype} {arr.shape}")
        out = arr.astype(np.int64)
        shown = out >= 0
        slots = np.clip(out, 0, self.cfg.n_streamers - 1)
        bad = shown & ((out >= self.cfg.n_streamers) | ~self.streamers.live[slots])
        if bad.any():
            row, rank = (int(i) for i in np.argwhere(bad)[0])
            raise InvalidActionError(f"session {row}, rank {rank}: streamer "
                                     f"{int(out[row, rank])} is not a live streamer")
        if (self._is_repeat(out) & shown).any():
            raise InvalidActionError("a slate shows each streamer once: an id is repeated")
        return out

    def _play(self, slate: Slate, restarting: np.ndarray
              ) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray, dict]:
        """The rest of a step once the slates are known: respond, log, end, move on."""
        active = ~restarting
        outcome = response.respond(slate, active, self.viewers.gift_propensity, self.cfg,
                                   self.rng)
        self.viewers.update(outcome, active, self.streamers.topic)
        self.streamers.log(count_engagement(self.cfg.n_streamers, slate.ids,
                                            outcome.clicked_id, outcome.fraction))
        terminated, truncated = self._end_sessions(active)
        reward = self._reward(outcome, terminated & self.viewers.will_return)
        info = self._info(slate, outcome, terminated | truncated, restarting)
        self._advance_world(restarting)
        self.needs_reset = terminated | truncated
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
        repeat = self._is_repeat(pos)
        # A rank the live candidates cannot fill (fewer allowed than ranks, or none at all)
        # shows nothing whatever it names: no action could be valid there.
        unfillable = np.arange(cfg.slate_size)[None, :] >= self.mask.sum(axis=1)[:, None]
        bad = (~ok | repeat) & ~unfillable & ~self.needs_reset[:, None]
        if bad.any() and cfg.invalid_action == "error":
            raise InvalidActionError(self._describe_bad(pos, inside, repeat, bad))
        return np.where(ok & ~repeat, pos, -1)

    @staticmethod
    def _is_repeat(pos: np.ndarray) -> np.ndarray:
        """True for every rank whose candidate already appeared at a higher rank."""
        earlier = np.tri(pos.shape[1], k=-1, dtype=bool)[None]
        return ((pos[:, :, None] == pos[:, None, :]) & earlier).any(axis=2)

    def _describe_bad(self, pos: np.ndarray, inside: np.ndarray, repeat: np.ndarray,
                      bad: np.ndarray) -> str:
        row, rank = (int(i) for i in np.argwhere(bad)[0])
        value, k = int(pos[row, rank]), self.cfg.n_candidates
        if not inside[row, rank]:
            why = f"is out of range [0, {k})"
        elif repeat[row, rank]:
            why = "is repeated (a slate shows each candidate once)"
        else:
            why = "is masked (no live streamer in that candidate slot)"
        where = f"session {row}" + (f", rank {rank}" if self.cfg.slate_size > 1 else "")
        return (f"invalid action for {where}: candidate {value} {why}; "
                "pass invalid_action='empty' to treat it as no recommendation")

    # ---------------------------------------------------------------- viewer response
    def slate_facts(self, positions: np.ndarray) -> Slate:
        """Hidden and visible facts of the candidates at `positions (n, L)`."""
        rows = np.arange(self.n)[:, None]
        return self.slate_of(np.where(positions >= 0,
                                      self.cand_ids[rows, np.maximum(positions, 0)], -1))

    def slate_of(self, ids: np.ndarray) -> Slate:
        """Hidden and visible facts of the streamers `ids (n, L)`, -1 for empty ranks."""
        s, v = self.streamers, self.viewers
        safe = np.maximum(ids, 0)
        topic = s.topic[safe]
        return Slate(
            ids=ids, attract=s.attract[safe], quality=s.quality[safe],
            match=np.einsum("nld,nd->nl", topic, v.interest),
            overlap=np.einsum("nld,nd->nl", topic, v.recent),
            followed=is_followed(ids, v.follows).astype(np.float32),
            current=(ids == v.current[:, None]) & (ids >= 0),
            minutes_left=s.minutes_left(safe),
        )

    def _end_sessions(self, active: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Which sessions ran out of patience or steps; those draw whether they come back."""
        cfg, v = self.cfg, self.viewers
        terminated = active & (v.patience <= 0)
        truncated = active & ~terminated & (v.step >= cfg.max_session_steps)
        ended = terminated | truncated
        p_return = response.return_probability(v.sat_sum, v.step, v.minutes, cfg)
        v.will_return = np.where(ended, self.rng.random(self.n) < p_return, v.will_return)
        return terminated, truncated

    def _reward(self, out: Outcome, returning: np.ndarray) -> np.ndarray:
        w = self.cfg.rewards
        return (w.watch_minute * out.minutes + w.click * (out.clicked_id >= 0)
                + w.gift * out.gifts + w.comment * out.comments
                + w.return_visit * returning).astype(np.float64)

    def _info(self, slate: Slate, out: Outcome, ended: np.ndarray,
              restarting: np.ndarray) -> dict[str, np.ndarray]:
        s, shown = self.streamers, slate.ids >= 0
        age = (self.tick - s.born_tick[np.maximum(slate.ids, 0)]) * self.cfg.step_minutes
        return {
            "recommended": ~restarting & shown.any(axis=1),
            "shown_ids": slate.ids,
            "clicked": out.clicked_id >= 0,
            "clicked_id": out.clicked_id,
            "clicked_rank": np.where(out.clicked_id >= 0,
                                     (slate.ids == out.clicked_id[:, None]).argmax(axis=1), -1),
            "watch_share": out.fraction,
            "watch_minutes": out.minutes,
            "gifts": out.gifts,
            "comments": out.comments,
            "follow_id": out.follow_id,
            "session_end": ended,
            "will_return": ended & self.viewers.will_return,
            "cold_start_shown": (shown & (age < NEW_STREAMER_MINUTES)).sum(axis=1),
        }

    # ---------------------------------------------------------------- world and observation
    def _advance_world(self, restarting: np.ndarray) -> None:
        s, day = self.streamers, self.clock // MINUTES_PER_DAY
        self.tick += 1
        if self.clock // MINUTES_PER_DAY != day:
            s.new_day(self.rng)
        s.replace_offline(self.rng, self.tick)
        s.log(s.organic_traffic(self.rng))
        if restarting.any():
            self.viewers.next_sessions(np.flatnonzero(restarting), self.rng)
        current = self.viewers.current
        s.watchers = np.bincount(current[current >= 0], minlength=self.cfg.n_streamers)
        s.update_live(self.clock)
        self._refresh_candidates()

    def _refresh_candidates(self) -> None:
        s, v = self.streamers, self.viewers
        self.cand_ids = retrieve(self.cfg, s.live, s.viewers, v.follows, self.rng,
                                 self.pool.run)
        self.mask = self.cand_ids >= 0
        self.topics, self.stats = s.feature_tables(self.tick)

    def pair_features(self, rows: slice = slice(None)) -> np.ndarray:
        """`(n, K, 3)` float32 PAIR_FEATURES of the candidate table of sessions `rows`."""
        v = self.viewers
        return pair_features(self.cand_ids[rows], v.follows[rows], v.current[rows],
                             v.hist_ids[rows], v.hist_minutes[rows])

    def observe(self) -> dict[str, np.ndarray]:
        """The batched observation dict for the current clock."""
        v, s, cfg = self.viewers, self.streamers, self.cfg
        current_live = (v.current >= 0) & s.live[np.maximum(v.current, 0)]
        viewer = viewer_features(v.logged(current_live), self.clock,
                                 max_session_steps=cfg.max_session_steps,
                                 max_follows=cfg.max_follows)
        table_rows = np.where(self.mask, self.cand_ids, cfg.n_streamers)
        width = candidate_width(cfg.content.n_columns())
        cands = np.empty((self.n, cfg.n_candidates, width), np.float32)

        def fill(rows: slice) -> None:
            candidate_features(np.take(self.topics, table_rows[rows], axis=0),
                               np.take(self.stats, table_rows[rows], axis=0), viewer[rows],
                               self.pair_features(rows), out=cands[rows])

        self.pool.run(fill, self.n)
        return {"viewer": viewer, "candidates": cands, "mask": self.mask.astype(np.int8)}

    def live_streamers(self) -> dict[str, np.ndarray]:
        """What the platform observes of the streamers live now (copies): slot `id`,
        `born_tick` (a slot's newcomer is a new streamer), `topic`, `viewers`,
        `minutes_live`, logged `impressions`, `clicks`, `watch_sum` and `age_minutes`."""
        s = self.streamers
        live = np.flatnonzero(s.live)
        record = s.record(self.tick)
        return {"id": live, "born_tick": s.born_tick[live].copy(),
                "topic": record.topic[live].copy(), "viewers": record.viewers[live].copy(),
                "minutes_live": np.asarray(record.minutes_live)[live].copy(),
                "impressions": record.impressions[live].copy(),
                "clicks": record.clicks[live].copy(), "watch_sum": record.watch_sum[live].copy(),
                "age_minutes": np.asarray(record.age_minutes)[live].astype(np.float64)}

    # ---------------------------------------------------------------- exact resume
    def get_state(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state, "tick": self.tick,
                "start_clock": self.start_clock, "needs_reset": self.needs_reset.copy(),
                "cand_ids": self.cand_ids.copy(), "streamers": self.streamers.state(),
                "viewers": self.viewers.state()}

    def set_state(self, state: dict[str, Any]) -> None:
        if self.rng is None:
            self.reset(0)  # allocates the arrays; every one is overwritten below
        self.rng.bit_generator.state = state["rng"]
        self.tick, self.start_clock = int(state["tick"]), int(state["start_clock"])
        self.needs_reset = np.array(state["needs_reset"], dtype=bool)
        self.streamers.load_state(state["streamers"])
        self.viewers.load_state(state["viewers"])
        self.cand_ids = np.array(state["cand_ids"], dtype=np.int32)
        self.mask = self.cand_ids >= 0
        self.topics, self.stats = self.streamers.feature_tables(self.tick)
