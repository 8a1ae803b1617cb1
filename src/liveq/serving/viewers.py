"""A viewer's logged state and the rules that keep it, as `liveq.features` defines them.

`ViewerState` is what the `viewers` table holds per viewer (JSON): the topic profile and
recent exposure, the session counters, follows and watch history, by streamer id. The
updates call the features module's logging rules (`record_watches`, `add_follow`,
`add_history`) on one-row arrays, so the service keeps exactly the numbers the simulator
keeps for its viewers:

* a served recommendation is a step: recent exposure decays, the previous step's click
  and watch are cleared and the session step counts up (`begin_step`);
* a click sets `last_click`; a watch of `m` minutes is a watch share `m / step_minutes`
  (at most 1) folded into profile and exposure, the session minutes and the history;
* a follow joins the follow list; a session end (or `session_gap_minutes` of silence)
  closes the session, and the next visit on a later day counts as a day active.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from liveq.core.units import MINUTES_PER_DAY
from liveq.features.viewer import add_follow, add_history, record_watches
from liveq.serving.settings import FeatureSettings

SECONDS_PER_DAY = MINUTES_PER_DAY * 60


@dataclass
class ViewerState:
    """What the service has logged of one viewer (streamers by their ids)."""

    profile: list[float]
    recent: list[float]
    session_id: str = ""
    session_steps: int = 0
    session_minutes: float = 0.0
    last_click: float = 0.0
    last_watch: float = 0.0
    follows: list[str | None] = field(default_factory=list)  # oldest first, None empty
    hist_ids: list[str | None] = field(default_factory=list)
    hist_minutes: list[float] = field(default_factory=list)
    days_active: int = 0
    watching: str | None = None
    last_seen: float = 0.0  # UNIX seconds of the last request or event
    session_day: int = -1  # UTC day number the current session started on

    @classmethod
    def new(cls, settings: FeatureSettings) -> ViewerState:
        d = settings.topic_dim
        return cls(profile=[0.0] * d, recent=[0.0] * d,
                   follows=[None] * settings.max_follows,
                   hist_ids=[None] * settings.history_slots,
                   hist_minutes=[0.0] * settings.history_slots)

    @classmethod
    def from_json(cls, data: dict[str, Any], settings: FeatureSettings) -> ViewerState:
        state = cls(**data)
        fresh = cls.new(settings)
        if len(state.profile) != settings.topic_dim:  # a model of another topic space
            state.profile, state.recent = fresh.profile, fresh.recent
        state.follows = _fit(state.follows, settings.max_follows, None, keep_last=True)
        state.hist_ids = _fit(state.hist_ids, settings.history_slots, None)
        state.hist_minutes = _fit(state.hist_minutes, settings.history_slots, 0.0)
        return state

    def to_json(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict (what `dataclasses.asdict` gives: the lists
        hold only numbers, strings and None, so a shallow copy of each is a deep one, at
        a tenth of `asdict`'s cost on the recommend path)."""
        return {name: list(value) if isinstance(value, list) else value
                for name, value in vars(self).items()}


def _fit(values: list, size: int, empty: Any, keep_last: bool = False) -> list:
    """`values` cut or padded to `size` (a model with other list lengths)."""
    if len(values) >= size:
        return list(values[-size:] if keep_last else values[:size])
    pad = [empty] * (size - len(values))
    return pad + list(values) if keep_last else list(values) + pad


def start_session_if_due(state: ViewerState, now: float, gap_minutes: float) -> bool:
    """Open a new session when none is open or the viewer was silent `gap_minutes`;
    True when one was opened."""
    if state.session_id and now - state.last_seen < gap_minutes * 60:
        return False
    day = int(now // SECONDS_PER_DAY)
    if state.session_day >= 0 and day > state.session_day:
        state.days_active += 1
    state.session_id, state.session_day = uuid.uuid4().hex, day
    state.session_steps, state.session_minutes = 0, 0.0
    state.last_click = state.last_watch = 0.0
    state.watching = None
    return True


def end_session(state: ViewerState) -> None:
    """Close the session: the next request opens a new one."""
    state.session_id, state.watching = "", None


def begin_step(state: ViewerState, settings: FeatureSettings, now: float) -> None:
    """A recommendation was served: exposure decays, the step's outcome starts empty."""
    profile, recent = _topics(state)
    record_watches(profile, recent, np.zeros(0, np.int64), np.zeros((0, len(state.recent)),
                   np.float32), np.zeros((0, 1), np.float32),
                   exposure_decay=settings.fatigue_decay, profile_rate=settings.profile_rate)
    state.profile, state.recent = profile[0].tolist(), recent[0].tolist()
    state.session_steps += 1
    state.last_click = state.last_watch = 0.0
    state.last_seen = now


def record_click(state: ViewerState, now: float) -> None:
    state.last_click, state.last_seen = 1.0, now


def record_watch(state: ViewerState, settings: FeatureSettings, streamer: str,
                 topic: np.ndarray, minutes: float, now: float) -> None:
    """`minutes` of watching `streamer` (topic vector `topic`) in the current step."""
    share = np.float32(min(minutes / settings.step_minutes, 1.0))
    profile, recent = _topics(state)
    record_watches(profile, recent, np.zeros(1, np.int64),
                   np.asarray(topic, np.float32)[None], np.full((1, 1), share, np.float32),
                   exposure_decay=1.0, profile_rate=settings.profile_rate)
    state.profile, state.recent = profile[0].tolist(), recent[0].tolist()
    state.last_click = 1.0
    state.last_watch = float(min(state.last_watch + share, 1.0))
    state.session_minutes += float(minutes)
    state.watching, state.last_seen = streamer, now
    names = _Names(state.hist_ids + [streamer])
    ids = names.ids(state.hist_ids)[None]
    minutes_row = np.asarray(state.hist_minutes, np.float32)[None]
    add_history(ids, minutes_row, np.zeros(1, np.int64), names.ids([streamer]),
                np.full(1, minutes, np.float32))
    state.hist_ids, state.hist_minutes = names.names(ids[0]), minutes_row[0].tolist()


def record_follow(state: ViewerState, streamer: str, now: float) -> None:
    names = _Names(state.follows + [streamer])
    follows = names.ids(state.follows)[None]
    add_follow(follows, np.zeros(1, np.int64), names.ids([streamer]))
    state.follows, state.last_seen = names.names(follows[0]), now


def _topics(state: ViewerState) -> tuple[np.ndarray, np.ndarray]:
    return (np.asarray(state.profile, np.float32)[None].copy(),
            np.asarray(state.recent, np.float32)[None].copy())


class _Names:
    """Dense int ids for streamer names, so the features' array rules apply (-1 = None)."""

    def __init__(self, names: list[str | None]):
        self.order = list(dict.fromkeys(n for n in names if n is not None))
        self.index = {n: i for i, n in enumerate(self.order)}

    def ids(self, names: list[str | None]) -> np.ndarray:
        return np.asarray([-1 if n is None else self.index[n] for n in names], np.int64)

    def names(self, ids: np.ndarray) -> list[str | None]:
        return [None if i < 0 else self.order[i] for i in ids.tolist()]
