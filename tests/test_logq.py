"""Logged-Q ranking models: transitions and features by hand, learning, determinism, cold start."""

import math

import numpy as np
import polars as pl
import pytest
import torch

from liveq.core.config import ConfigError, from_dict
from liveq.data.log import InteractionLog, LogError, from_raw
from liveq.ranking import logq_data as data
from liveq.ranking.availability import live_index, viewers_at
from liveq.ranking.logq import (
    LoggedQConfig,
    LoggedQModel,
    batch_rows,
    embedding_rows,
    gradient_steps,
)
from liveq.ranking.protocol import run_protocol
from liveq.ranking.queries import RankingQueries

# --- transitions and features by hand ------------------------------------------------

# user 0 watches item 0 [0, 3), item 1 [2, 4), then item 0 again 196 steps later (> 1 day);
# user 1 watches item 1 [1, 3) and item 2 [3, 3) (stops as it starts: counts as step 3).
TINY = from_raw(pl.DataFrame({"user": [0, 0, 0, 1, 1], "item": [0, 1, 0, 1, 2],
                              "start": [0, 2, 200, 1, 3], "stop": [3, 4, 201, 3, 3]}),
                step_minutes=10.0, source="tiny")


def test_live_index_and_viewers_by_hand():
    live = live_index(TINY.frame, TINY.n_items)
    # step 0: {0}; 1: {0, 1}; 2: {0, 1 (two users)}; 3: {1, 2}; 200: {0}
    assert live.offsets[:5].tolist() == [0, 1, 3, 5, 7]
    assert live.items[:7].tolist() == [0, 0, 1, 0, 1, 1, 2]
    assert live.viewers[:7].tolist() == [1, 1, 1, 1, 2, 1, 1]
    assert viewers_at(live, np.array([1, 1, 2, 0]), np.array([2, 3, 3, 5])).tolist() == [
        2, 1, 1, 0]
    # two live items at step 3, four asked: both, once each, in order; the rest invalid
    items, viewers, valid = data.sample_live(live, np.array([3, 3]), 4, np.random.default_rng(0))
    assert items[valid].tolist() == [1, 2, 1, 2] and valid.sum(axis=1).tolist() == [2, 2]
    assert viewers[valid].tolist() == [1, 1, 1, 1]


def test_sampling_from_a_large_live_set_marks_repeats():
    live = live_index(pl.DataFrame({"user": np.arange(50), "item": np.arange(50),
                                               "start": [0] * 50, "stop": [1] * 50}), 50)
    items, _, valid = data.sample_live(live, np.zeros(200, np.int64), 10,
                                       np.random.default_rng(0))
    assert set(items.ravel().tolist()) <= set(range(50))
    for row, keep in zip(items, valid, strict=True):
        assert len(set(row[keep].tolist())) == keep.sum() and set(row[keep]) == set(row)
    assert not valid.all()  # 10 draws of 50 repeat now and then
    assert data.first_occurrence(np.array([[3, 1, 3, 3, 1]])).tolist() == [
        [True, True, False, False, False]]


def test_viewers_count_distinct_users():
    overlapping = pl.DataFrame({"user": [0, 0, 1], "item": [0, 0, 0], "start": [0, 1, 1],
                                "stop": [2, 3, 2]})
    live = live_index(overlapping, 1)
    assert live.viewers.tolist() == [1, 2, 1]  # user 0's two rows overlap at step 1


def test_transitions_by_hand():
    live = live_index(TINY.frame, TINY.n_items)
    trans = data.build_transitions(TINY, live, max_gap_steps=144, watch_reward=1.0)
    # rows by (user, start): u0 i0 @0, u0 i1 @2, u0 i0 @200, u1 i1 @1, u1 i2 @3
    assert trans.item.tolist() == [0, 1, 0, 1, 2]
    assert trans.first.tolist() == [0, 0, 0, 3, 3]
    # row 1 -> row 2 is a 196-step gap (> 144): terminal; last rows of users are terminal
    assert trans.next_row.tolist() == [1, -1, -1, 4, -1]
    assert trans.viewers.tolist() == [0, 1, 0, 0, 0]  # others watching, the user excluded
    # reward 1 + log1p(minutes): 30, 20, 10, 20, 0 minutes
    expected = [1 + math.log1p(m) for m in (30, 20, 10, 20, 0)]
    assert trans.reward.tolist() == pytest.approx(expected, rel=1e-6)
    history, history_time = data.history_of(trans, np.array([2, 4, 0]), 2)
    assert history.tolist() == [[0, 1], [-1, 1], [-1, -1]]
    assert history_time.tolist() == [[0, 2], [-1, 1], [-1, -1]]


def test_state_features_by_hand():
    feats = data.state_features(np.array([[0, 1], [-1, -1]]), np.array([[0, 2], [-1, -1]]),
                                np.array([200, 6]), 10.0)
    angle = 2 * math.pi * 560 / 1440  # 2000 minutes = 1 day + 560
    # gap (200 - 2) * 10 = 1980 minutes; empty history: no gap, nothing filled
    assert feats[0].tolist() == pytest.approx(
        [math.sin(angle), math.cos(angle), math.log1p(1980) / 10, 1.0], abs=1e-6)
    assert feats[1].tolist() == pytest.approx([math.sin(math.pi / 12), math.cos(math.pi / 12),
                                               0.0, 0.0], abs=1e-6)


def test_candidate_features_by_hand():
    history, history_time = np.array([[-1, 5, 7, 5]]), np.array([[-1, 10, 20, 30]])
    feats = data.candidate_features(history, history_time, np.array([40]), np.zeros(3, int),
                                    np.array([5, 7, 9]), np.array([0, 3, 10]), 10.0)
    # log_repeats, in_history, recency exp(-minutes / day), position 1 / (1 + newer), viewers
    assert feats[0].tolist() == pytest.approx(
        [math.log(3), 1, math.exp(-100 / 1440), 1.0, 0.0], abs=1e-6)
    assert feats[1].tolist() == pytest.approx(
        [math.log(2), 1, math.exp(-200 / 1440), 0.5, math.log(4)], abs=1e-6)
    assert feats[2].tolist() == pytest.approx([0, 0, 0, 0, math.log(11)], abs=1e-6)


def test_left_align_moves_padding_to_the_front():
    history, times = data.left_align(np.array([[4, 5, -1, -1], [-1, 1, -1, 2]]),
                                     np.array([[1, 2, -1, -1], [-1, 3, -1, 4]]))
    assert history.tolist() == [[-1, -1, 4, 5], [-1, -1, 1, 2]]
    assert times.tolist() == [[-1, -1, 1, 2], [-1, -1, 3, 4]]


def test_embedding_rows_steps_and_batches():
    rows, m = embedding_rows(np.array([3, 0, 1, 2]), min_count=2)
    assert (rows.tolist(), m) == ([0, 2, 2, 1], 2)  # items 1, 2 share the unknown row 2
    config = LoggedQConfig(batch_size=10, epochs=2.0, max_gradient_steps=7)
    assert gradient_steps(25, config) == 5  # ceil(2 * 25 / 10)
    assert gradient_steps(1000, config) == 7
    batches = list(batch_rows(25, 10, 5, np.random.default_rng(0)))
    assert all(len(b) == 10 for b in batches)
    assert sorted(np.concatenate(batches[:2]).tolist()) == sorted(set(
        np.concatenate(batches[:2]).tolist()))  # no repeats within one pass


def test_config_errors():
    with pytest.raises(ConfigError, match="negatives"):
        from_dict(LoggedQConfig, {"negatives": 0})
    with pytest.raises(ConfigError, match="gamma"):
        from_dict(LoggedQConfig, {"gamma": 1.0})
    with pytest.raises(ConfigError, match="'cql_alpa'"):
        from_dict(LoggedQConfig, {"cql_alpa": 1.0})
    with pytest.raises(ConfigError, match="objective 'sarsa'"):
        LoggedQModel("sarsa")


# --- learning on a log with a strong repeat pattern ---------------------------------------

def repeat_log(n_users=300, n_items=200, days=3, seed=0) -> InteractionLog:
    """Streamers live in a daily window; each user watches one of two favourites when one
    is live (80%), else a uniformly random live streamer; 10-minute steps."""
    rng = np.random.default_rng(seed)
    steps = days * 144
    begin, length = rng.integers(0, 144, n_items), rng.integers(24, 72, n_items)
    live = ((np.arange(steps)[None, :] - begin[:, None]) % 144) < length[:, None]
    rows = []
    for user in range(n_users):
        favourites = rng.choice(n_items, 2, replace=False)
        now = int(rng.integers(0, 36))
        while now < steps - 1:
            live_favourites = [f for f in favourites if live[f, now]]
            if live_favourites and rng.random() < 0.8:
                item = int(rng.choice(live_favourites))
            else:
                item = int(rng.choice(np.flatnonzero(live[:, now])))
            remaining = int(np.argmin(live[item, now:])) or steps - now
            stop = now + min(int(rng.integers(1, 6)), remaining)
            rows.append((user, item, now, stop))
            now = stop + int(rng.integers(0, 48))
    frame = pl.DataFrame(rows, schema=["user", "item", "start", "stop"], orient="row")
    return from_raw(frame, step_minutes=10.0, source="repeat-log")


def queries_from(log: InteractionLog, split: int) -> RankingQueries:
    """Every interaction starting at or after `split`, ranked among all streamers live then."""
    live = live_index(log.frame, log.n_items)
    trans = data.build_transitions(log, live, max_gap_steps=144, watch_reward=0.0)
    rows = np.flatnonzero(trans.start >= split)
    history, history_time = data.history_of(trans, rows, 16)
    time, target = trans.start[rows], trans.item[rows]
    sizes = live.offsets[time + 1] - live.offsets[time]
    flat = np.concatenate([np.arange(live.offsets[t], live.offsets[t + 1]) for t in time])
    cand = live.items[flat]
    viewers = live.viewers[flat] - (cand == np.repeat(target, sizes))
    return RankingQueries(trans.user[rows], time, target, history, history_time,
                          np.r_[0, np.cumsum(sizes)].astype(np.int64), cand,
                          viewers.astype(np.int32), (history == target[:, None]).any(axis=1))


def top1(queries: RankingQueries, scores: np.ndarray) -> float:
    """Share of queries whose target scores strictly above every other candidate."""
    sizes = np.diff(queries.offsets)
    best = np.maximum.reduceat(np.where(queries.cand_item == np.repeat(queries.target, sizes),
                                        -np.inf, scores), queries.offsets[:-1])
    return float(np.mean(scores[queries.cand_item == np.repeat(queries.target, sizes)] > best))


SPLIT = 2 * 144
SMALL = dict(negatives=16, batch_size=64, max_gradient_steps=300, embedding_dim=16,
             state_dim=32, hidden_sizes=[32, 16])


@pytest.fixture(scope="module")
def repeat_data():
    log = repeat_log()
    train = InteractionLog(log.frame.filter(pl.col("stop") < SPLIT), log.user_ids,
                           log.item_ids, log.step_minutes, log.source)
    return train, queries_from(log, SPLIT)


@pytest.mark.parametrize("objective", ["bc", "dqn", "bandit"])
def test_learns_to_rank_the_repeat_streamer_first(repeat_data, objective):
    train, queries = repeat_data
    model = LoggedQModel(objective, LoggedQConfig(**SMALL))
    model.fit(train, seed=0)
    scores = model.score(queries)
    assert scores.shape == queries.cand_item.shape and np.isfinite(scores).all()
    random_top1 = float(np.mean(1.0 / np.diff(queries.offsets)))  # about 0.04
    assert top1(queries, scores) > random_top1 + 0.4
    repeat = queries.is_repeat
    sub = top1(_subset(queries, repeat), scores[np.repeat(repeat, np.diff(queries.offsets))])
    assert sub > 0.8  # a favourite seen in the history is ranked first
    assert np.mean(model.losses[-30:]) < np.mean(model.losses[:30])


def _subset(queries: RankingQueries, keep: np.ndarray) -> RankingQueries:
    sizes = np.diff(queries.offsets)
    flat = np.repeat(keep, sizes)
    return RankingQueries(queries.user[keep], queries.time[keep], queries.target[keep],
                          queries.history[keep], queries.history_time[keep],
                          np.r_[0, np.cumsum(sizes[keep])].astype(np.int64),
                          queries.cand_item[flat], queries.cand_viewers[flat],
                          queries.is_repeat[keep])


def test_same_seed_same_scores_other_seed_other_scores(repeat_data):
    train, queries = repeat_data
    config = LoggedQConfig(**{**SMALL, "max_gradient_steps": 40})
    first, second, other = (LoggedQModel("dqn", config) for _ in range(3))
    first.fit(train, seed=3)
    second.fit(train, seed=3)
    other.fit(train, seed=4)
    assert np.array_equal(first.score(queries), second.score(queries))
    assert not np.array_equal(first.score(queries), other.score(queries))


def test_cold_start_users_and_items_get_finite_scores(repeat_data):
    train, queries = repeat_data
    model = LoggedQModel("bc", LoggedQConfig(**{**SMALL, "max_gradient_steps": 20}))
    threads = torch.get_num_threads()
    model.fit(train, seed=0)
    assert torch.get_num_threads() == threads
    unseen = train.n_items + 5  # an id the training log never had
    cold = RankingQueries(
        user=np.array([0, 10**6]), time=np.array([SPLIT, SPLIT + 1]), target=np.array([1, unseen]),
        history=np.array([[-1] * 14 + [unseen, 1], [-1] * 16]),
        history_time=np.array([[-1] * 14 + [SPLIT - 3, SPLIT - 1], [-1] * 16]),
        offsets=np.array([0, 3, 5]), cand_item=np.array([1, unseen, 2, unseen, 1]),
        cand_viewers=np.array([0, 4, 1, 0, 2]), is_repeat=np.array([True, False]))
    scores = model.score(cold)
    assert scores.shape == (5,) and np.isfinite(scores).all()


def test_errors_before_fit_and_on_an_empty_log():
    model = LoggedQModel("dqn", LoggedQConfig(**SMALL))
    with pytest.raises(RuntimeError, match="fit"):
        model.score(queries_from(TINY, 3))
    empty = InteractionLog(TINY.frame.clear(), TINY.user_ids, TINY.item_ids, 10.0, "empty.csv")
    with pytest.raises(LogError, match="empty.csv"):
        model.fit(empty, seed=0)


def test_runs_in_the_offline_protocol(repeat_data):
    log = repeat_log(n_users=60, n_items=40, days=2, seed=1)
    config = LoggedQConfig(**{**SMALL, "max_gradient_steps": 30})
    models = {name: LoggedQModel(name, config) for name in ("dqn", "bc", "bandit")}
    result = run_protocol(log, models, protocol="leave-last-out", splits=("test",))
    for name in models:
        hr10 = result["splits"]["test"]["models"][name]["all"]["HR@10"]["mean"]
        assert 0.0 <= hr10 <= 1.0
