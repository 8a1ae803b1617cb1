"""The reward join's slate part (k > 1): the shown list and which of its items was opened.

Every event names the shown item it concerns (`streamer_id`; left out, the top item, as
the service stores it; `session_end` concerns none). Per decision the join keeps the
shown ranked list (candidate-table rows, best first, -1 on ranks left empty when fewer
candidates were allowed than asked for), the rank of the first `click` inside the
attribution window in (time, event id) order (-1: nothing opened) and the list's logged
probability. The reward stays the sum over all the decision's events, whichever item
they concern (`liveq.serving.join.decision_reward`). An event naming a streamer the
decision did not show is a `LogError`: the service refuses such feedback, so the log was
written by something else.

`slate_transitions` gives what slate learners replay (`liveq.buffers.clicks`): the action
is the full list of `slate_size` rows, ranks left empty holding the first candidates the
mask forbids (as `liveq.policies.base.top_k_slate` fills them; the env showed nothing
there), and `next_obs["clicked_rank"]` is the decision's opened rank.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from liveq.buffers.clicks import CLICK_FIELD
from liveq.core.errors import LogError


class SlateSteps(NamedTuple):
    """The slate fields of the joined rows (one row per decision, in the join's order)."""

    slates: np.ndarray  # (n, L) int64 candidate rows shown, best first; -1 = rank empty
    clicked_rank: np.ndarray  # (n,) int64 rank opened, -1 = nothing
    probability: np.ndarray  # (n,) float64 logged probability of the shown ranked list


def slate_size(decisions: list[dict[str, Any]]) -> int:
    """The log's `k` (1 for single recommendations); a log mixing sizes is refused."""
    sizes = sorted({int(row["k"]) for row in decisions})
    if len(sizes) > 1:
        raise LogError(f"the log mixes decisions of k = {sizes}; learning and the gate "
                       "take one slate size at a time")
    return sizes[0] if sizes else 1


def event_rank(decision: dict[str, Any], event: dict[str, Any]) -> int:
    """The rank in the decision's shown list of the item `event` concerns."""
    streamer = event.get("streamer_id")
    if streamer is None:
        return 0
    if streamer not in decision["slate"]:
        raise LogError(f"event {event.get('event_id')} ({event['type']}) of decision "
                       f"{decision['decision_id']} names streamer '{streamer}', which that "
                       f"decision did not show (shown: {decision['slate']})")
    return decision["slate"].index(streamer)


def clicked_rank(decision: dict[str, Any], events: list[dict[str, Any]],
                 attribution_minutes: float) -> int:
    """The rank of the first click within the window (-1: none); `events` are the
    decision's, in (created_at, event_id) order, and each is checked against the list."""
    opened = -1
    limit = decision["created_at"] + 60.0 * attribution_minutes
    for event in events:
        if event["type"] == "session_end":
            continue
        rank = event_rank(decision, event)
        if (opened < 0 and event["type"] == "click"
                and decision["created_at"] <= event["created_at"] <= limit):
            opened = rank
    return opened


def slate_steps(rows: list[dict[str, Any]], clicks: dict[str, int], size: int) -> SlateSteps:
    """The slate fields of `rows` (decision rows in the join's order)."""
    slates = np.full((len(rows), size), -1, np.int64)
    for i, row in enumerate(rows):
        shown = row["slate_positions"][:size]
        slates[i, :len(shown)] = shown
    return SlateSteps(slates, np.array([clicks[r["decision_id"]] for r in rows], np.int64),
                      np.array([float(r["slate_probability"]) for r in rows], np.float64))


def filled_slates(slates: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """`slates` with every empty rank holding the next candidate row that is neither
    shown nor allowed, in row order (what `top_k_slate` puts there)."""
    out = slates.copy()
    for i in np.flatnonzero((slates < 0).any(axis=1)):
        spare = [c for c in np.flatnonzero(~mask[i]) if c not in set(slates[i].tolist())]
        empty = np.flatnonzero(slates[i] < 0)
        out[i, empty] = spare[:len(empty)]
    return out


def slate_transitions(base: dict[str, Any], steps: SlateSteps) -> dict[str, Any]:
    """`base` (the k = 1 transitions) with the action the full list and the opened rank
    as `next_obs["clicked_rank"]` (`obs["clicked_rank"]` is -1, as after a reset)."""
    mask = np.asarray(base["obs"]["mask"], bool)
    n = len(mask)
    return {**base, "action": filled_slates(steps.slates, mask),
            "obs": {**base["obs"], CLICK_FIELD: np.full(n, -1, np.int64)},
            "next_obs": {**base["next_obs"], CLICK_FIELD: steps.clicked_rank.copy()}}
