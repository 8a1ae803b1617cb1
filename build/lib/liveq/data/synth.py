"""Synthetic interaction logs: run the LiveStream simulator under a behaviour policy.

A liveq baseline (`popular`, `repeat`, `random`, `oracle`) recommends, mixed with
epsilon-uniform exploration, to `sessions` concurrent viewer sessions for `days` of
platform time. Every step a viewer keeps watching the same broadcast extends one row;
rows carry the viewer, the streamer, the broadcast, `start`/`stop` in the simulator's step
index (`clock // step_minutes`, so step 0 is day 0 at 00:00), watched minutes, gifts and
the behaviour policy's exact propensity: the probability that it recommended the row's
streamer at the row's first step (the behaviour is `EpsilonGreedy` around the baseline;
with slates, the probability that the streamer was anywhere in the slate, i.e. the sum of
its per-rank probabilities).

Identities follow the simulator: a session slot keeps its viewer when that viewer comes
back and gets a new user id when a newcomer takes the slot; a streamer slot taken over by
a newcomer (a new `born_tick`) gets a new streamer id; a broadcast id is new each time a
streamer goes live.

`synth_command` writes the log in any format `load_log` reads (Twitch CSV, a KuaiLive
folder, or generic Parquet/CSV with its schema YAML beside it).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import NamedTuple

import numpy as np
import polars as pl

from liveq.core.config import ConfigError
from liveq.core.units import MINUTES_PER_DAY
from liveq.data.log import InteractionLog, from_raw
from liveq.policies.base import Policy
from liveq.policies.baselines import make_baseline
from liveq.policies.explore import EpsilonGreedy
from liveq.sim.config import LiveStreamConfig
from liveq.sim.livestream import LiveStreamVectorEnv

POLICIES = ("popular", "repeat", "random", "oracle")
RETURN_JITTER_HOURS = 2.0
NEVER = np.iinfo(np.int64).max
# Viewer state that belongs to the person, not to the session (see liveq.sim.viewers).
PERSISTENT = ("interest", "profile", "gift_propensity", "follows", "hist_ids",
              "hist_minutes", "days")


class StepEvents(NamedTuple):
    """What the sessions did in one step, `(n,)` each."""

    step: int
    clicked: np.ndarray  # bool
    user: np.ndarray  # int64 user id of each session slot
    item: np.ndarray  # int64 streamer id watched (valid where clicked)
    stream: np.ndarray  # int64 broadcast id watched (valid where clicked)
    watch: np.ndarray  # float64 minutes
    gifts: np.ndarray  # float64
    propensity: np.ndarray  # float64 behaviour probability of showing `item` (where clicked)


class Identities:
    """Stable ids for viewers, streamers and broadcasts across slot reuse."""

    def __init__(self, n_sessions: int, core) -> None:
        s = core.streamers
        self.user = np.arange(n_sessions, dtype=np.int64)
        self.next_user = n_sessions
        self.item = np.arange(len(s.born_tick), dtype=np.int64)
        self.next_item = len(s.born_tick)
        self.born = s.born_tick.copy()
        self.stream = np.full(len(s.born_tick), -1, dtype=np.int64)
        self.next_stream = 0
        self.live = np.zeros(len(s.born_tick), dtype=bool)
        self.update_streamers(core)

    def update_streamers(self, core) -> None:
        """New streamer ids for taken-over slots, new broadcast ids for streams going live."""
        s = core.streamers
        changed = s.born_tick != self.born
        reborn = np.flatnonzero(changed)
        self.item[reborn] = self.next_item + np.arange(len(reborn))
        self.next_item += len(reborn)
        self.born = s.born_tick.copy()
        went_live = np.flatnonzero(s.live & (~self.live | changed))
        self.stream[went_live] = self.next_stream + np.arange(len(went_live))
        self.next_stream += len(went_live)
        self.live = s.live.copy()

    def assign_users(self, slots: np.ndarray, users: np.ndarray) -> None:
        """The next sessions in `slots` belong to `users`; -1 marks a newcomer."""
        fresh = users < 0
        users = users.copy()
        users[fresh] = self.next_user + np.arange(int(fresh.sum()))
        self.next_user += int(fresh.sum())
        self.user[slots] = users


class AwayViewers:
    """Viewers who will come back, waiting out the time until their next visit.

    The simulator restarts a returning viewer in the same slot on the very next step. Here
    the viewer's logged state (interests, follows, history, days active) leaves with them
    and comes back `return_after_days` later (give or take `RETURN_JITTER_HOURS`), taking
    the next free slot; slots nobody returns to go to newcomers.
    """

    def __init__(self, viewers, steps_away: float, rng: np.random.Generator) -> None:
        self.state = {key: getattr(viewers, key)[:0].copy() for key in PERSISTENT}
        self.user = np.zeros(0, dtype=np.int64)
        self.due = np.zeros(0, dtype=np.int64)  # NEVER marks a free place in the buffers
        self.steps_away, self.rng = steps_away, rng
        self.jitter = RETURN_JITTER_HOURS * 60 / viewers.cfg.step_minutes

    @property
    def waiting(self) -> int:
        return int((self.due != NEVER).sum())

    def _places(self, m: int) -> np.ndarray:
        """`m` free places in the buffers, which double when full."""
        free = np.flatnonzero(self.due == NEVER)
        if len(free) < m:
            grow = max(m - len(free), len(self.due))
            self.due = np.concatenate([self.due, np.full(grow, NEVER)])
            self.user = np.concatenate([self.user, np.zeros(grow, dtype=np.int64)])
            self.state = {key: np.concatenate([value, np.zeros((grow, *value.shape[1:]),
                                                               dtype=value.dtype)])
                          for key, value in self.state.items()}
            free = np.flatnonzero(self.due == NEVER)
        return free[:m]

    def leave(self, viewers, slots: np.ndarray, users: np.ndarray, tick: int) -> None:
        away = self.steps_away + self.rng.normal(0.0, self.jitter, size=len(slots))
        places = self._places(len(slots))
        self.due[places] = tick + np.maximum(1, np.round(away)).astype(np.int64)
        self.user[places] = users
        for key in PERSISTENT:
            self.state[key][places] = getattr(viewers, key)[slots]

    def come_back(self, viewers, slots: np.ndarray, tick: int) -> np.ndarray:
        """Fill `slots` (sessions that just ended) with viewers due back, longest waiting
        first; the rest get newcomers. Returns each slot's user id, -1 for a newcomer."""
        ready = np.flatnonzero(self.due <= tick)
        take = ready[np.argsort(self.due[ready], kind="stable")][:len(slots)]
        back = slots[:len(take)]
        for key in PERSISTENT:
            getattr(viewers, key)[back] = self.state[key][take]
        # The simulator keeps a viewer whose will_return is set and replaces the others.
        viewers.will_return[slots] = False
        viewers.will_return[back] = True
        users = np.full(len(slots), -1, dtype=np.int64)
        users[:len(take)] = self.user[take]
        self.due[take] = NEVER
        return users


ROW_FIELDS = ("user", "item", "stream", "start", "stop", "watch", "gifts", "propensity")


class RowBuilder:
    """Merges consecutive steps of one viewer on one broadcast into rows."""

    def __init__(self, n: int) -> None:
        self.stream = np.full(n, -1, dtype=np.int64)
        self.user = np.zeros(n, dtype=np.int64)
        self.item = np.zeros(n, dtype=np.int64)
        self.start = np.zeros(n, dtype=np.int64)
        self.stop = np.zeros(n, dtype=np.int64)
        self.watch = np.zeros(n, dtype=np.float64)
        self.gifts = np.zeros(n, dtype=np.float64)
        self.propensity = np.zeros(n, dtype=np.float64)
        self.closed: list[dict[str, np.ndarray]] = []

    def add(self, ev: StepEvents) -> None:
        open_ = self.stream >= 0
        cont = ev.clicked & open_ & (self.stream == ev.stream) & (self.stop == ev.step) \
            & (self.user == ev.user)
        self._close(np.flatnonzero(open_ & ~cont))
        rows = np.flatnonzero(cont)
        self.stop[rows] = ev.step + 1
        self.watch[rows] += ev.watch[rows]
        self.gifts[rows] += ev.gifts[rows]
        rows = np.flatnonzero(ev.clicked & ~cont)
        for name in ("stream", "user", "item", "watch", "gifts", "propensity"):
            getattr(self, name)[rows] = getattr(ev, name)[rows]
        self.start[rows], self.stop[rows] = ev.step, ev.step + 1

    def _close(self, rows: np.ndarray) -> None:
        if len(rows):
            self.closed.append({name: getattr(self, name)[rows].copy() for name in
                                ROW_FIELDS})
        self.stream[rows] = -1

    def frame(self) -> pl.DataFrame:
        """All rows (open ones closed), sorted by (start, user)."""
        self._close(np.flatnonzero(self.stream >= 0))
        cols = {name: np.concatenate([c[name] for c in self.closed]) if self.closed
                else np.zeros(0) for name in ROW_FIELDS}
        return pl.DataFrame({
            "user": cols["user"].astype(np.int64), "item": cols["item"].astype(np.int64),
            "stream": cols["stream"].astype(np.int64),
            "start": cols["start"].astype(np.int32), "stop": cols["stop"].astype(np.int32),
            "watch": cols["watch"].astype(np.float32),
            "value": cols["gifts"].astype(np.float32),
            "propensity": cols["propensity"].astype(np.float64),
        }).sort("start", "user", "item")


def _behaviour(policy: str, env, epsilon: float, rng: np.random.Generator,
               seed: int) -> Policy:
    """The baseline, replaced by a uniformly random slate with probability epsilon."""
    return EpsilonGreedy(make_baseline(policy, env, seed), epsilon, rng)


def shown_probability(behaviour: Policy, obs: dict) -> np.ndarray:
    """`(n, K)` probability that `behaviour` shows each candidate (any rank of a slate)."""
    probs = behaviour.probabilities(obs)
    return probs if probs.ndim == 2 else probs.sum(axis=1)


def clicked_propensity(shown: np.ndarray, cand_ids: np.ndarray,
                       clicked_id: np.ndarray) -> np.ndarray:
    """`(n,)` shown-probability of the candidate each viewer opened (0 where none was:
    candidate ids are distinct within a row)."""
    return (shown * (cand_ids == clicked_id[:, None])).sum(axis=1)


def _check_args(policy: str, epsilon: float, sessions: int, days: float,
                return_after_days: float) -> None:
    if policy not in POLICIES:
        raise ConfigError(f"unknown behaviour policy {policy!r}; choose from "
                          f"{', '.join(POLICIES)}")
    if not 0.0 <= epsilon <= 1.0:
        raise ConfigError(f"epsilon must be in [0, 1], got {epsilon}")
    if sessions < 1:
        raise ConfigError(f"sessions must be at least 1, got {sessions}")
    if not 0 < days < math.inf:
        raise ConfigError(f"days must be positive and finite, got {days}")
    if not 0 <= return_after_days < math.inf:
        raise ConfigError(f"return_after_days must be non-negative and finite, got "
                          f"{return_after_days}")


def _next_viewers(core, info: dict, ids: Identities, away: AwayViewers | None,
                  tick: int) -> None:
    """Decide who takes each slot whose session just ended, and their user ids."""
    ended = np.flatnonzero(info["session_end"])
    if away is None:
        users = np.where(info["will_return"][ended], ids.user[ended], -1)
    else:
        returning = ended[info["will_return"][ended]]
        away.leave(core.viewers, returning, ids.user[returning], tick)
        users = away.come_back(core.viewers, ended, tick)
    ids.assign_users(ended, users)


def simulate_rows(sim_config: LiveStreamConfig | None = None, *, policy: str = "popular",
                  epsilon: float = 0.1, sessions: int = 2000, days: float = 7.0,
                  seed: int = 0, return_after_days: float = 1.0) -> pl.DataFrame:
    """Raw synthetic rows with original ids: user, item (streamer), stream (broadcast),
    start, stop (Int32 steps), watch (Float32 minutes), value (Float32 gifts) and
    propensity (Float64: the behaviour's probability of showing the streamer at `start`).

    return_after_days: how long a returning viewer stays away (0: back on the next step,
    as in the simulator's own sessions).
    """
    _check_args(policy, epsilon, sessions, days, return_after_days)
    cfg = dataclasses.replace(sim_config or LiveStreamConfig(), invalid_action="empty")
    env = LiveStreamVectorEnv(sessions, config=cfg)
    world_seed, policy_seed, away_seed = np.random.SeedSequence(seed).spawn(3)
    obs, _ = env.reset(seed=int(world_seed.generate_state(1)[0]))
    behaviour = _behaviour(policy, env, epsilon, np.random.default_rng(policy_seed), seed)
    core, ids, rows = env.core, Identities(sessions, env.core), RowBuilder(sessions)
    steps_per_day = MINUTES_PER_DAY / cfg.step_minutes
    away = None if return_after_days == 0 else AwayViewers(
        core.viewers, return_after_days * steps_per_day, np.random.default_rng(away_seed))
    first_step = int(core.start_clock // cfg.step_minutes)
    for tick in range(int(round(days * steps_per_day))):
        watched_item, watched_stream = ids.item.copy(), ids.stream.copy()
        shown, cand_ids = shown_probability(behaviour, obs), core.cand_ids.copy()
        obs, _, _, _, info = env.step(behaviour.act(obs).actions)
        current = np.maximum(core.viewers.current, 0)  # the clicked streamer where clicked
        rows.add(StepEvents(first_step + tick, info["clicked"], ids.user.copy(),
                            watched_item[current], watched_stream[current],
                            np.asarray(info["watch_minutes"], dtype=np.float64),
                            np.asarray(info["gifts"], dtype=np.float64),
                            clicked_propensity(shown, cand_ids, current)))
        _next_viewers(core, info, ids, away, tick)
        ids.update_streamers(core)
    env.close()
    return rows.frame()


def simulate_interactions(sim_config: LiveStreamConfig | None = None, *,
                          policy: str = "popular", epsilon: float = 0.1, sessions: int = 2000,
                          days: float = 7.0, seed: int = 0,
                          return_after_days: float = 1.0) -> InteractionLog:
    """A synthetic `InteractionLog` (watch minutes and gifts included), in memory.

    See `simulate_rows` for the arguments.
    """
    raw = simulate_rows(sim_config, policy=policy, epsilon=epsilon, sessions=sessions,
                        days=days, seed=seed, return_after_days=return_after_days)
    step = (sim_config or LiveStreamConfig()).step_minutes
    return from_raw(raw.drop("stream", "propensity"), step_minutes=step,
                    source=f"synth:{policy},epsilon={epsilon},seed={seed}")


def write_rows(raw: pl.DataFrame, format: str, out: str | Path, step_minutes: float) -> str:
    """Write `simulate_rows` output in `format` (twitch, kuailive, generic); returns a note
    on what was written beside `out` (the generic schema), else an empty string."""
    if format == "twitch":
        from liveq.data.twitch import write_twitch
        write_twitch(raw.select(pl.col("user").alias("user_id"),
                                pl.col("stream").alias("stream_id"),
                                pl.format("s{}", "item").alias("streamer_name"),
                                "start", "stop"), out)
        return ""
    if format == "kuailive":
        from liveq.data.kuailive import write_kuailive
        write_kuailive(raw, out, step_minutes)
        return ""
    from liveq.data.generic import write_generic
    return f", schema {write_generic(raw, out, step_minutes)}"
