"""Offline ranking evaluation on interaction logs: splits, targets, live candidates, metrics.

**LiveRec protocol** (Rappaz, McAuley & Aberer, "Recommendation on Live-Streaming
Platforms: Dynamic Availability and Repeat Consumption", RecSys 2021), following their
code (github.com/JRappaz/liverec: `data.py` `load_data` / `get_sequences`, `eval.py`
`metrics`, `main.py`):

* `max_step` is the log's last stop step; `pivot_1 = max_step - 500`,
  `pivot_2 = max_step - 250`. Split `train` covers `[0, pivot_1)`, `validation`
  `[pivot_1, pivot_2)`, `test` `[pivot_2, max_step)`.
* A split with bounds `[lo, hi)` sees only the rows that stop before `hi` (`stop < hi`).
  Each user's visible rows are ordered by (start, stop, item); the last one is the
  user's target, kept when `lo <= start < hi` and the user has at least one earlier
  visible row. Its history is the (up to) 16 visible rows before it: 16 history + 1
  target = the user's last 17 interactions.
* A streamer is available at step `t` when some row of the whole log has
  `start <= t < stop`; the candidates of a target are all streamers available at its
  start step (full ranking, no sampled negatives). The target's own row makes it
  available, so it is always a candidate (a row with `stop == start` counts as one step).
* Models train on the rows that stop before `pivot_1` (`main.py`: `stop < pivot_1`) and
  are scored on validation and test (test is the headline).
* The target's 0-based rank `r` gives HR@k = [r < k] and NDCG@k = [r < k] / log2(r + 2),
  averaged over all targets, repeat targets and new targets.

Deviations from that code, on purpose: ties are broken uniformly at random with the
seed (LiveRec's `argsort` breaks them by candidate order, which flatters constant
scores); a target is a *repeat* when it is anywhere in its 16-item history (LiveRec's
check skips the oldest history item, an off-by-one of its shifted target sequence); rows
with the same start are ordered by stop then item (pandas leaves that order unspecified).

`compat="liverec"` (`liveq.ranking.liverec`) switches the repeat rule, POP and REP back to
the code's definitions, to reproduce the paper's baseline numbers.

**Self-only availability.** Availability is read off the log itself, so a streamer that
no other user of the log watches at the target's time is a candidate only because of the
target's own row. On a sampled log (the Twitch 100k file holds 100k of 15.5M users) that
is common, and a model can learn "live with no other viewer" and find the target without
knowing the user. Every split reports `self_only_target_share`, the share of targets in
that case; `availability="others"` makes a streamer available only through other users'
rows, drops the targets that are then not live (`dropped_targets`) and removes the
self-only candidates of the other queries.

**Leave-last-out protocol** for generic logs: each user's last row (same order) is the
test target, the second-last the validation target, and the rest is the training log;
histories are the up to 16 rows before the target; candidates and metrics as above.
"""

from __future__ import annotations

import time as clock
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import polars as pl

from liveq.core.stats import mean_ci
from liveq.core.units import MINUTES_PER_DAY
from liveq.data.log import InteractionLog, LogError
from liveq.data.sanity import require_compact
from liveq.ranking.availability import AVAILABILITY, live_candidates
from liveq.ranking.liverec import check_compat, liverec_targets
from liveq.ranking.queries import OfflineModel, RankingQueries

PROTOCOLS = ("liverec", "leave-last-out")
SPLITS = ("train", "validation", "test")
HISTORY = 16
KS = (1, 5, 10)
METRICS = tuple(f"HR@{k}" for k in KS) + tuple(f"NDCG@{k}" for k in KS)
SUBSETS = ("all", "repeat", "new")
TIE_BREAKING = ("ties broken uniformly at random with the seed: the target takes a uniform "
                "position among the candidates scored equal to it (same draws for every model)")


@dataclass(frozen=True)
class LiveRecSplit:
    """Where the LiveRec protocol cuts time: steps before the end of the log."""

    validation_steps: int = 500
    test_steps: int = 250

    def pivots(self, log: InteractionLog) -> tuple[int, int, int]:
        """`(pivot_1, pivot_2, max_step)`; a log too short for them is an error."""
        max_step = log.max_step
        pivot_1, pivot_2 = max_step - self.validation_steps, max_step - self.test_steps
        first = int(log.frame["start"].min())
        if pivot_1 <= first:
            raise LogError(f"{log.source}: the LiveRec split needs a log longer than "
                           f"{self.validation_steps} steps (it spans steps {first}..{max_step});"
                           " use --protocol leave-last-out")
        return pivot_1, pivot_2, max_step

    def bounds(self, log: InteractionLog, split: str) -> tuple[int, int]:
        pivot_1, pivot_2, max_step = self.pivots(log)
        return {"train": (np.iinfo(np.int32).min, pivot_1), "validation": (pivot_1, pivot_2),
                "test": (pivot_2, max_step)}[split]

    def describe(self, log: InteractionLog) -> dict[str, int]:
        pivot_1, pivot_2, max_step = self.pivots(log)
        return {"pivot_1": pivot_1, "pivot_2": pivot_2, "max_step": max_step}


class SortedRows(NamedTuple):
    """The log's rows ordered by (user, start, stop, item)."""

    row: np.ndarray  # (m,) int64 index of the row in `log.frame`
    user: np.ndarray  # (m,) int32
    item: np.ndarray  # (m,) int32
    start: np.ndarray  # (m,) int32
    stop: np.ndarray  # (m,) int32
    from_end: np.ndarray  # (m,) int64 rows of the same user after this one (0: the last)


def sort_rows(log: InteractionLog) -> SortedRows:
    frame = (log.frame.select("user", "item", "start", "stop").with_row_index("row")
             .sort(["user", "start", "stop", "item"]))
    user = frame["user"].to_numpy()
    return SortedRows(frame["row"].to_numpy().astype(np.int64), user,
                      frame["item"].to_numpy(), frame["start"].to_numpy(),
                      frame["stop"].to_numpy(), _rows_from_end(user))


def _rows_from_end(group: np.ndarray) -> np.ndarray:
    """`(m,)` for a sorted group column: how many rows of the same group follow each row."""
    last = np.flatnonzero(np.r_[group[1:] != group[:-1], True])
    sizes = np.diff(np.r_[-1, last])
    return np.repeat(last, sizes) - np.arange(len(group))


def last_visible(user: np.ndarray, visible: np.ndarray,
                 history: int) -> tuple[np.ndarray, np.ndarray]:
    """Each user's last visible row and the up to `history` visible rows before it.

    `user` is sorted; returns `(targets, hist)`: `(n,)` row indices of the targets (users
    with at least two visible rows) and `(n, history)` row indices of their histories,
    most recent last, -1 padded on the left.
    """
    rows = np.flatnonzero(visible)
    from_end = _rows_from_end(user[rows])
    last = np.flatnonzero(from_end == 0)
    depth = np.minimum(np.diff(np.r_[-1, last]) - 1, history)
    last, depth = last[depth > 0], depth[depth > 0]
    column = np.arange(history)
    position = last[:, None] - history + column  # column c holds row last - (history - c)
    present = column >= history - depth[:, None]
    hist = np.full((len(last), history), -1, dtype=np.int64)
    hist[present] = rows[position[present]]
    return rows[last], hist


def _visible(rows: SortedRows, log: InteractionLog, split: str, protocol: str,
             liverec: LiveRecSplit) -> tuple[np.ndarray, tuple[int, int] | None]:
    """Which sorted rows the split sees, and the target start bounds (LiveRec only)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    if protocol == "liverec":
        low, high = liverec.bounds(log, split)
        return rows.stop < high, (low, high)
    if protocol == "leave-last-out":
        hidden = {"test": 0, "validation": 1, "train": 2}[split]
        return rows.from_end >= hidden, None
    raise ValueError(f"unknown protocol {protocol!r}; expected one of {', '.join(PROTOCOLS)}")


def self_only(queries: RankingQueries) -> np.ndarray:
    """`(n,)` bool: the query's target has no other viewer at its time (see above)."""
    return queries.cand_viewers[target_index(queries)] == 0


def without_self_only(queries: RankingQueries) -> RankingQueries:
    """Drop the candidates no other user watches, and the queries whose target is one."""
    keep_query = ~self_only(queries)
    keep = (queries.cand_viewers > 0) & np.repeat(keep_query, np.diff(queries.offsets))
    counts = np.bincount(queries.query_of_candidate()[keep], minlength=queries.n_queries)
    per_query = {name: getattr(queries, name)[keep_query] for name in
                 ("user", "time", "target", "history", "history_time", "is_repeat")}
    return RankingQueries(**per_query, offsets=np.r_[0, np.cumsum(counts[keep_query])],
                          cand_item=queries.cand_item[keep],
                          cand_viewers=queries.cand_viewers[keep])


def build_queries(log: InteractionLog, split: str, history: int = HISTORY, *,
                  protocol: str = "liverec",
                  liverec: LiveRecSplit = LiveRecSplit()) -> RankingQueries:
    """One ranking query per user with a target in `split` (see the module docstring)."""
    rows = sort_rows(log)
    visible, bounds = _visible(rows, log, split, protocol, liverec)
    target, hist = last_visible(rows.user, visible, history)
    if bounds is not None:
        keep = (rows.start[target] >= bounds[0]) & (rows.start[target] < bounds[1])
        target, hist = target[keep], hist[keep]
    padded = hist < 0
    history_item = np.where(padded, -1, rows.item[hist]).astype(np.int32)
    history_time = np.where(padded, -1, rows.start[hist]).astype(np.int32)
    user, time, item = rows.user[target], rows.start[target], rows.item[target]
    offsets, cand_item, cand_viewers = live_candidates(log.frame, log.n_items, user, time)
    return RankingQueries(user=user, time=time, target=item, history=history_item,
                          history_time=history_time, offsets=offsets, cand_item=cand_item,
                          cand_viewers=cand_viewers,
                          is_repeat=(history_item == item[:, None]).any(axis=1))


def training_log(log: InteractionLog, protocol: str = "liverec",
                 liverec: LiveRecSplit = LiveRecSplit()) -> InteractionLog:
    """The rows models learn from: LiveRec, those that stop before `pivot_1`;
    leave-last-out, all but each user's last two rows. Ids are kept as in `log`."""
    if protocol == "liverec":
        keep = (log.frame["stop"] < liverec.pivots(log)[0]).to_numpy()
    elif protocol == "leave-last-out":
        rows = sort_rows(log)
        keep = np.zeros(len(rows.row), dtype=bool)
        keep[rows.row] = rows.from_end >= 2
    else:
        raise ValueError(f"unknown protocol {protocol!r}; expected one of {', '.join(PROTOCOLS)}")
    return InteractionLog(log.frame.filter(pl.Series(keep)), log.user_ids, log.item_ids,
                          log.step_minutes, f"{log.source} [training rows]")


def hits(ranks: np.ndarray, k: int) -> np.ndarray:
    """Per target: 1 if ranked in the top `k` (`ranks` 0-based), else 0."""
    return (np.asarray(ranks) < k).astype(np.float64)


def gains(ranks: np.ndarray, k: int) -> np.ndarray:
    """Per target: `1 / log2(rank + 2)` in the top `k`, else 0 (one relevant item per
    query, so the ideal DCG is 1 and this is the target's NDCG@k)."""
    ranks = np.asarray(ranks)
    return np.where(ranks < k, 1.0 / np.log2(ranks.astype(np.float64) + 2.0), 0.0)


def hit_rate_at_k(ranks: np.ndarray, k: int) -> float:
    """HR@k: mean of `hits` over targets; NaN without targets."""
    return float(np.mean(hits(ranks, k))) if np.size(ranks) else float("nan")


def ndcg_at_k(ranks: np.ndarray, k: int) -> float:
    """NDCG@k: mean of `gains` over targets; NaN without targets."""
    return float(np.mean(gains(ranks, k))) if np.size(ranks) else float("nan")


def target_index(queries: RankingQueries) -> np.ndarray:
    """`(n,)` flat index of each query's target among its candidates (exactly one each)."""
    sizes = np.diff(queries.offsets)
    found = np.flatnonzero(queries.cand_item == np.repeat(queries.target, sizes))
    if len(found) != queries.n_queries or np.any(np.searchsorted(
            queries.offsets, found, side="right") - 1 != np.arange(queries.n_queries)):
        raise ValueError("every query needs its target exactly once among its candidates")
    return found


def ranks_from_scores(scores: np.ndarray, offsets: np.ndarray, target_index: np.ndarray,
                      rng: np.random.Generator) -> np.ndarray:
    """`(n,)` 0-based rank of each query's target among its candidates, higher first.

    The target takes a uniformly random position among the candidates tied with it:
    `rank = #greater + floor(u * #equal)` with `u ~ U[0, 1)` drawn once per query (one
    draw per query, so ranking queries in chunks gives the same ranks).
    """
    scores = np.asarray(scores, dtype=np.float64)
    if np.isnan(scores).any():
        raise ValueError("scores contain NaN")
    sizes = np.diff(offsets)
    mine = np.repeat(scores[target_index], sizes)
    starts = offsets[:-1]
    greater = np.add.reduceat(scores > mine, starts, dtype=np.int64) if len(starts) else sizes
    equal = np.add.reduceat(scores == mine, starts, dtype=np.int64) if len(starts) else sizes
    return greater + np.floor(rng.random(len(sizes)) * equal).astype(np.int64)


def slice_queries(queries: RankingQueries, first: int, last: int) -> RankingQueries:
    """Queries `first:last` with their candidates (views, offsets rebased to 0)."""
    lo, hi = queries.offsets[first], queries.offsets[last]
    per_query = {name: getattr(queries, name)[first:last] for name in
                 ("user", "time", "target", "history", "history_time", "is_repeat")}
    return RankingQueries(**per_query, offsets=queries.offsets[first:last + 1] - lo,
                          cand_item=queries.cand_item[lo:hi],
                          cand_viewers=queries.cand_viewers[lo:hi])


def query_chunks(offsets: np.ndarray, max_candidates: int) -> list[tuple[int, int]]:
    """Consecutive query ranges of about `max_candidates` candidates (at least one query)."""
    n = len(offsets) - 1
    bounds = [0]
    while bounds[-1] < n:
        limit = offsets[bounds[-1]] + max_candidates
        bounds.append(max(bounds[-1] + 1, int(np.searchsorted(offsets, limit, "right")) - 1))
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def rank_queries(model, queries: RankingQueries, rng: np.random.Generator,
                 max_candidates: int = 2_000_000) -> np.ndarray:
    """Score `queries` with a fitted model chunk by chunk and rank each target."""
    ranks = []
    for first, last in query_chunks(queries.offsets, max_candidates):
        chunk = slice_queries(queries, first, last)
        scores = np.asarray(model.score(chunk), dtype=np.float64)
        if scores.shape != chunk.cand_item.shape or np.isnan(scores).any():
            raise ValueError(f"model {model.name!r} returned {scores.shape} scores (NaN: "
                             f"{np.isnan(scores).any()}) for {chunk.cand_item.shape} candidates")
        ranks.append(ranks_from_scores(scores, chunk.offsets, target_index(chunk), rng))
    return np.concatenate(ranks) if ranks else np.zeros(0, dtype=np.int64)


def summarise_ranks(ranks: np.ndarray, is_repeat: np.ndarray) -> dict[str, dict[str, dict]]:
    """`{subset: {metric: {mean, ci_low, ci_high, n}}}` for all, repeat and new targets,
    with 95% Student's t intervals over targets."""
    masks = {"all": np.ones(len(ranks), dtype=bool), "repeat": is_repeat, "new": ~is_repeat}
    out = {}
    for subset, mask in masks.items():
        chosen = ranks[mask]
        values = {f"HR@{k}": hits(chosen, k) for k in KS}
        values |= {f"NDCG@{k}": gains(chosen, k) for k in KS}
        out[subset] = {}
        for metric, per_target in values.items():
            mean, low, high = mean_ci(per_target)
            out[subset][metric] = {"mean": mean, "ci_low": low, "ci_high": high,
                                   "n": int(mask.sum())}
    return out


def split_points(log: InteractionLog, protocol: str,
                 liverec: LiveRecSplit = LiveRecSplit()) -> dict[str, int | str]:
    if protocol == "liverec":
        return liverec.describe(log) | {
            "rule": "a split sees the rows that stop before its end; each user's last one is "
                    "the target if it starts in the split: train before pivot_1, validation "
                    "in [pivot_1, pivot_2), test in [pivot_2, max_step); models train on the "
                    "rows that stop before pivot_1"}
    return {"max_step": log.max_step, "rule": "per user: last row = test target, "
            "second-last = validation target, the rest = training rows"}


def run_protocol(log: InteractionLog, models: Mapping[str, OfflineModel], *,
                 protocol: str = "liverec", seed: int = 0, history: int = HISTORY,
                 splits: tuple[str, ...] = ("validation", "test"),
                 liverec: LiveRecSplit = LiveRecSplit(), availability: str = "log",
                 compat: str = "liveq") -> dict:
    """Fit every model once on the training rows, then rank the targets of `splits`.

    `compat="liverec"` splits repeat and new targets by the LiveRec code's rule
    (`liveq.ranking.liverec`; its POP and REP come from `offline_models("liverec")`).

    Returns a JSON-ready dict: protocol, seed, tie-breaking rule, split points, training
    rows, fit seconds, and per split the target counts, repeat ratio, score seconds and
    `summarise_ranks` of every model.
    """
    if availability not in AVAILABILITY:
        raise ValueError(f"unknown availability {availability!r}; expected one of "
                         f"{', '.join(AVAILABILITY)}")
    check_compat(compat)
    require_compact(log.frame, MINUTES_PER_DAY / log.step_minutes, log.source)
    train = training_log(log, protocol, liverec)
    fit_seconds = {}
    for name, model in models.items():
        started = clock.perf_counter()
        model.fit(train, seed)
        fit_seconds[name] = clock.perf_counter() - started
    result = {"protocol": protocol, "seed": seed, "tie_breaking": TIE_BREAKING,
              "history": history, "split_points": split_points(log, protocol, liverec),
              "availability": availability, "compat": compat,
              "n_training_rows": train.frame.height,
              "fit_seconds": fit_seconds, "splits": {}}
    for split in splits:
        queries = build_queries(log, split, history, protocol=protocol, liverec=liverec)
        if compat == "liverec":
            queries = liverec_targets(queries)
        alone = self_only(queries)
        facts = {"self_only_target_share": float(alone.mean()) if len(alone) else 0.0,
                 "dropped_targets": 0}
        if availability == "others":
            queries = without_self_only(queries)
            facts["dropped_targets"] = int(alone.sum())
        result["splits"][split] = facts | _evaluate(queries, models,
                                                    [seed, SPLITS.index(split)])
        del queries
    return result


def _evaluate(queries: RankingQueries, models: Mapping[str, OfflineModel], seed) -> dict:
    n, n_repeat = queries.n_queries, int(queries.is_repeat.sum())
    out = {"n_targets": n, "n_repeat": n_repeat, "n_new": n - n_repeat,
           "repeat_ratio": n_repeat / n if n else float("nan"),
           "n_candidates": int(queries.offsets[-1]), "score_seconds": {}, "models": {}}
    for name, model in models.items():
        started = clock.perf_counter()
        # The same tie-breaking draws for every model: equal scores, equal ranks.
        ranks = rank_queries(model, queries, np.random.default_rng(seed))
        out["score_seconds"][name] = clock.perf_counter() - started
        out["models"][name] = summarise_ranks(ranks, queries.is_repeat)
    return out
