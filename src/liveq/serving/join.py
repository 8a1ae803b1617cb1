"""The reward join: the decision log's decisions and events -> rewards, sessions, transitions.

Deterministic and replayable: the result depends only on the rows in the log and the
`JoinConfig` (saved beside every output), never on row order in the database or the
clock. Running it twice on the same log gives the same arrays bit for bit.

* Reward of a decision: the events of that decision (by `decision_id`) that arrived within
  `attribution_minutes` after it, in (time, event id) order, each worth its type's weight
  times its amount (watch: minutes, gift: value, others: 1), summed; types named in
  `count_once` count only their first event. No counted event: `default_reward`.
* Sessions: `sessions: logged` keeps the service's own session ids (a new one after
  `session_gap_minutes` of silence or a `session_end` event); `sessions: gap` splits a
  viewer's decisions again wherever `gap_minutes` pass without a decision or a
  `session_end` event arrived. A session that may still be running (no `session_end`,
  its last decision less than `gap_minutes` before the log's last decision) is dropped
  with `drop_open_sessions`.
* Return visit: the last decision of a session earns `return_visit` more when the
  viewer's next session starts within `return_within_hours` (the simulator's
  `rewards.return_visit`); a session whose window runs past the log's end earns none.
* Decisions logged without features (`--log-sample` < 1) cannot be rebuilt, and
  dropping one would cut its session in two: `unlogged: refuse` stops with a `LogError`;
  `unlogged: drop_sessions` drops every session that holds one (each kept session was
  kept with probability log_probability^steps, so short sessions are over-represented:
  fine for learning, and the promotion gate refuses such a join).
* Slates (k > 1): each decision also keeps its shown list, the rank of the item opened
  (the first click in the window, by the event's `streamer_id`) and the list's logged
  probability (`liveq.serving.slate_join`); a k = 1 log joins exactly as before.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from sqlalchemy import Engine

from liveq.core.config import from_dict, load_yaml, require, save_yaml, to_dict
from liveq.core.errors import LogError
from liveq.ope.sessions import Sessions, check_sessions
from liveq.serving import store
from liveq.serving.slate_join import (
    SlateSteps,
    clicked_rank,
    slate_size,
    slate_steps,
    slate_transitions,
)

EVENT_TYPES = ("impression", "click", "watch", "gift", "comment", "follow", "session_end")
SECONDS_PER_HOUR = 3600.0


def _default_weights() -> dict[str, float]:
    return {"impression": 0.0, "click": 1.0, "watch": 0.05, "gift": 0.5, "comment": 0.0,
            "follow": 0.0}


@dataclass(kw_only=True)
class JoinConfig:
    """How decisions and events become rewards and sessions (saved as join.yaml)."""

    attribution_minutes: float = 10.0
    """An event counts toward its decision when it arrives within this many minutes."""
    weights: dict[str, float] = field(default_factory=_default_weights)
    """Reward per event by type: per minute for watch, per unit of value for gift, per
    event otherwise (the simulator's rewards by default; session_end is worth nothing)."""
    count_once: list[str] = field(default_factory=lambda: ["click", "follow"])
    """Event types that count at most once per decision (repeats are ignored)."""
    default_reward: float = 0.0
    """Reward of a decision when no event counts toward it."""
    return_visit: float = 2.0
    """Added to a session's last decision when the viewer's next session starts within
    `return_within_hours` (0 turns it off)."""
    return_within_hours: float = 24.0
    """How soon the next session must start to count as a return visit."""
    sessions: str = "logged"
    """logged: the service's session ids; gap: split by `gap_minutes` and session_end."""
    gap_minutes: float = 30.0
    """Silence that ends a session (`sessions: gap`, and for open sessions)."""
    drop_open_sessions: bool = True
    """Drop sessions that may still be running at the log's end."""
    unlogged: str = "refuse"
    """Decisions logged without features: refuse, or drop_sessions holding them."""

    def validate(self) -> None:
        require(self.attribution_minutes > 0, "attribution_minutes must be > 0")
        unknown = sorted(set(self.weights) - set(EVENT_TYPES) - {"session_end"})
        require(not unknown, f"weights: unknown event types {unknown}; known: "
                f"{list(EVENT_TYPES)}")
        require(all(np.isfinite(v) for v in self.weights.values()),
                "weights must be finite numbers")
        bad = sorted(set(self.count_once) - set(EVENT_TYPES))
        require(not bad, f"count_once: unknown event types {bad}")
        require(np.isfinite(self.default_reward) and np.isfinite(self.return_visit),
                "default_reward and return_visit must be finite")
        require(self.return_within_hours > 0, "return_within_hours must be > 0")
        require(self.sessions in ("logged", "gap"),
                f"sessions must be 'logged' or 'gap', got {self.sessions!r}")
        require(self.gap_minutes > 0, "gap_minutes must be > 0")
        require(self.unlogged in ("refuse", "drop_sessions"),
                f"unlogged must be 'refuse' or 'drop_sessions', got {self.unlogged!r}")


def load_join_config(path: str | Path | None) -> JoinConfig:
    """The JoinConfig in a YAML file (None: the defaults), validated."""
    config = JoinConfig() if path is None else from_dict(JoinConfig, load_yaml(path))
    config.validate()
    return config


def save_join_config(config: JoinConfig, path: str | Path) -> None:
    save_yaml(to_dict(config), Path(path))


class JoinedLog(NamedTuple):
    """The join's result: sessions for the estimators, transitions for the learners."""

    sessions: Sessions
    decision_ids: list[str]  # one per row of `sessions`
    viewer_ids: list[str]
    next_row: np.ndarray  # (n,) row of the same session's next decision; self when terminal
    stats: dict[str, Any]  # counts: decisions, skipped and why, sessions, events used
    slate: SlateSteps | None = None  # k > 1: shown lists, opened ranks, probabilities

    def transitions(self) -> dict[str, Any]:
        """(obs, action, reward, next_obs, terminated) as batched arrays for replay (for
        slates the action is the list and next_obs holds the opened rank)."""
        obs = self.sessions.observations()
        nxt = {key: value[self.next_row] for key, value in obs.items()}
        base = {"obs": obs, "action": self.sessions.action,
                "reward": self.sessions.reward, "next_obs": nxt,
                "terminated": self.sessions.terminal.astype(np.float32)}
        return base if self.slate is None else slate_transitions(base, self.slate)


# ------------------------------------------------------------------ rewards
def decision_reward(decision: dict[str, Any], events: list[dict[str, Any]],
                    config: JoinConfig) -> tuple[float, int, bool]:
    """(reward, events counted, a session_end arrived) of one decision; `events` are its
    events in (created_at, event_id) order."""
    total, counted, seen, ended = 0.0, 0, set(), False
    limit = decision["created_at"] + 60.0 * config.attribution_minutes
    for event in events:
        if not decision["created_at"] <= event["created_at"] <= limit:
            continue
        kind = event["type"]
        if kind == "session_end":
            ended = True
            continue
        if kind in config.count_once and kind in seen:
            continue
        seen.add(kind)
        amount = event["value"] if kind in ("watch", "gift") else 1.0
        total += config.weights.get(kind, 0.0) * float(amount or 0.0)
        counted += 1
    return (total if counted else config.default_reward), counted, ended


# ------------------------------------------------------------------ sessions
def _session_keys(rows: list[dict[str, Any]], ended: dict[str, bool],
                  config: JoinConfig) -> list[tuple[str, str]]:
    """(viewer, session key) per decision row; rows are in (viewer, time, id) order."""
    if config.sessions == "logged":
        return [(r["viewer_id"], r["session_id"]) for r in rows]
    keys, number, previous = [], 0, None
    for r in rows:
        fresh = (previous is None or previous["viewer_id"] != r["viewer_id"]
                 or r["created_at"] - previous["created_at"] > 60 * config.gap_minutes
                 or ended[previous["decision_id"]])
        number += fresh
        keys.append((r["viewer_id"], f"gap-{number:09d}"))
        previous = r
    return keys


def _group(rows: list[dict[str, Any]], ended: dict[str, bool],
           config: JoinConfig) -> list[list[dict[str, Any]]]:
    """Decision rows grouped into sessions, ordered by (first time, viewer, key)."""
    rows = sorted(rows, key=lambda r: (r["viewer_id"], r["created_at"], r["decision_id"]))
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for key, row in zip(_session_keys(rows, ended, config), rows, strict=True):
        groups[key].append(row)
    for members in groups.values():
        members.sort(key=lambda r: (r["created_at"], r["decision_id"]))
    order = sorted(groups, key=lambda k: (groups[k][0]["created_at"], k[0], k[1]))
    return [groups[k] for k in order]


def _returned(sessions: list[list[dict[str, Any]]], config: JoinConfig) -> list[bool]:
    """Whether each session's viewer came back within the return window."""
    starts: dict[str, list[float]] = defaultdict(list)
    for s in sessions:
        starts[s[0]["viewer_id"]].append(s[0]["created_at"])
    window = config.return_within_hours * SECONDS_PER_HOUR
    out = []
    for s in sessions:
        end = s[-1]["created_at"]
        later = [t for t in starts[s[0]["viewer_id"]] if t > end]
        out.append(bool(later) and min(later) - end <= window)
    return out


def _is_open(session: list[dict[str, Any]], ended: dict[str, bool], log_end: float,
             config: JoinConfig) -> bool:
    last = session[-1]
    return not ended[last["decision_id"]] and log_end - last["created_at"] < 60 * config.gap_minutes


def _check_decision(row: dict[str, Any]) -> None:
    if row["logged"] and row["probabilities"] is None:
        raise LogError(f"decision {row['decision_id']} has no logged distribution over its "
                       "candidates; it cannot be evaluated or learned from")


def join_rows(decisions: list[dict[str, Any]], events: list[dict[str, Any]],
              config: JoinConfig | None = None) -> JoinedLog:
    """The join of decision rows and event rows (as the log's tables hold them)."""
    config = config or JoinConfig()
    config.validate()
    by_decision: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in sorted(events, key=lambda e: (e["created_at"], e["event_id"])):
        by_decision[event["decision_id"]].append(event)
    for row in decisions:
        _check_decision(row)
    size = slate_size(decisions)
    rewards, ended, counted, clicks = {}, {}, 0, {}
    for row in decisions:
        mine = by_decision.get(row["decision_id"], [])
        reward, n, end = decision_reward(row, mine, config)
        rewards[row["decision_id"]], ended[row["decision_id"]] = reward, end
        counted += n
        if size > 1:
            clicks[row["decision_id"]] = clicked_rank(row, mine, config.attribution_minutes)
    sessions = _group(decisions, ended, config)
    returned = _returned(sessions, config)
    log_end = max((r["created_at"] for r in decisions), default=0.0)
    stats = {"decisions": len(decisions), "events": len(events), "events_counted": counted,
             "sessions_found": len(sessions), "open_sessions_dropped": 0,
             "unlogged_sessions_dropped": 0}
    kept = []
    for session, back in zip(sessions, returned, strict=True):
        if config.drop_open_sessions and _is_open(session, ended, log_end, config):
            stats["open_sessions_dropped"] += 1
        elif not all(r["logged"] for r in session):
            if config.unlogged == "refuse":
                raise LogError(f"session of viewer {session[0]['viewer_id']} holds decisions "
                               f"logged without features (--log-sample "
                               f"{session[0]['log_probability']:g}); join with unlogged: "
                               "drop_sessions to learn from the sessions logged in full")
            stats["unlogged_sessions_dropped"] += 1
        else:
            kept.append((session, back))
    joined = _assemble(kept, rewards, config, stats)
    if size == 1:
        return joined
    rows = [r for session, _ in kept for r in session]
    joined.stats["slate_size"] = size
    return joined._replace(slate=slate_steps(rows, clicks, size))


def _assemble(kept: list[tuple[list[dict[str, Any]], bool]], rewards: dict[str, float],
              config: JoinConfig, stats: dict[str, Any]) -> JoinedLog:
    rows = [(i, t, r) for i, (s, _) in enumerate(kept) for t, r in enumerate(s)]
    widths = {len(r["candidates"]) for _, _, r in rows}
    if len(widths) > 1:
        raise LogError(f"the log mixes candidate tables of sizes {sorted(widths)}; join the "
                       "decisions of one model family at a time")
    reward = np.array([rewards[r["decision_id"]] for _, _, r in rows], np.float64)
    terminal = np.array([t == len(kept[i][0]) - 1 for i, t, _ in rows], bool)
    reward[terminal] += config.return_visit * np.array([kept[i][1] for i, t, _ in rows
                                                        if t == len(kept[i][0]) - 1], float)
    n = len(rows)
    sessions = Sessions(
        session=np.array([i for i, _, _ in rows], np.int64),
        step=np.array([t for _, t, _ in rows], np.int64),
        viewer=np.array([r["features"]["viewer"] for _, _, r in rows], np.float32),
        candidates=np.array([r["features"]["candidates"] for _, _, r in rows], np.float32),
        mask=np.array([r["features"]["mask"] for _, _, r in rows], bool),
        action=np.array([_action(r) for _, _, r in rows], np.int64),
        behaviour=np.array([_behaviour(r) for _, _, r in rows], np.float64),
        reward=reward, terminal=terminal)
    if n == 0:
        sessions = _empty(sessions)
    else:
        check_sessions(sessions)
    next_row = np.where(terminal, np.arange(n), np.arange(n) + 1).astype(np.int64)
    stats.update(sessions=len(kept), steps=n, reward_sum=float(reward.sum()))
    return JoinedLog(sessions, [r["decision_id"] for _, _, r in rows],
                     [r["viewer_id"] for _, _, r in rows], next_row, stats)


def _action(row: dict[str, Any]) -> int:
    """The shown candidate's row in the table (0 when nothing could be shown)."""
    return int(row["slate_positions"][0]) if row["slate_positions"] else 0


def _behaviour(row: dict[str, Any]) -> list[float]:
    """The serving policy's distribution over the K candidates (one-hot at the forced
    action when no candidate was allowed)."""
    if not row["slate_positions"]:
        return [1.0] + [0.0] * (len(row["candidates"]) - 1)
    return [float(p) for p in row["probabilities"][0]]


def _empty(sessions: Sessions) -> Sessions:
    """Zero rows with the right number of dimensions."""
    return sessions._replace(viewer=np.zeros((0, 0), np.float32),
                             candidates=np.zeros((0, 0, 0), np.float32),
                             mask=np.zeros((0, 0), bool), behaviour=np.zeros((0, 0)))


def join_log(engine: Engine, config: JoinConfig | None = None) -> JoinedLog:
    """The join of every decision and event in the log behind `engine`."""
    with engine.connect() as conn:
        decisions = list(store.iter_decisions(conn))
        events = list(store.iter_events(conn))
        conn.rollback()
    return join_rows(decisions, events, config)
