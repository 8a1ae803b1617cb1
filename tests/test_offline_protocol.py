"""The offline protocol on a hand-made log: splits, targets, histories, candidates, metrics.

The log (user, streamer, start, stop), with LiveRec cut 4 and 2 steps before the end
(max_step 10, pivot_1 6, pivot_2 8):

    u1: A 0-2, B 2-4, A 5-6, A 6-7, C 8-9
    u2: B 1-3, C 7-10
    u3: C 3-5, B 6-9, A 8-9
    u4: D 9-10
    u5: A 1-2, B 3-4

Live steps (start <= t < stop): A 0,1,5,6,8; B 1,2,3,6,7,8; C 3,4,7,8,9; D 9.
"""

from __future__ import annotations

import json
import math

import numpy as np
import polars as pl
import pytest

from liveq.data.log import LogError, from_raw
from liveq.ranking.models import PopularNow, RepeatFavourite
from liveq.ranking.protocol import (
    LiveRecSplit,
    build_queries,
    hit_rate_at_k,
    last_visible,
    ndcg_at_k,
    query_chunks,
    rank_queries,
    ranks_from_scores,
    run_protocol,
    self_only,
    summarise_ranks,
    target_index,
    training_log,
    without_self_only,
)

ROWS = [("u1", "A", 0, 2), ("u1", "B", 2, 4), ("u1", "A", 5, 6), ("u1", "A", 6, 7),
        ("u1", "C", 8, 9), ("u2", "B", 1, 3), ("u2", "C", 7, 10), ("u3", "C", 3, 5),
        ("u3", "B", 6, 9), ("u3", "A", 8, 9), ("u4", "D", 9, 10), ("u5", "A", 1, 2),
        ("u5", "B", 3, 4)]
SHORT = LiveRecSplit(validation_steps=4, test_steps=2)


@pytest.fixture(scope="module")
def log():
    user, item, start, stop = zip(*ROWS, strict=True)
    frame = pl.DataFrame({"user": user, "item": item, "start": start, "stop": stop})
    return from_raw(frame, step_minutes=10.0, source="hand.csv")


def names(ids, values):
    """Original ids of dense `values` (-1 padding kept as None)."""
    return [ids[int(v)] if v >= 0 else None for v in values]


def query_table(log, queries):
    """{user: (time, target, history, {candidate: other viewers}, is_repeat)}."""
    out = {}
    for q in range(queries.n_queries):
        lo, hi = queries.offsets[q], queries.offsets[q + 1]
        candidates = dict(zip(names(log.item_ids, queries.cand_item[lo:hi]),
                              queries.cand_viewers[lo:hi].tolist(), strict=True))
        history = [h for h in names(log.item_ids, queries.history[q]) if h is not None]
        out[log.user_ids[int(queries.user[q])]] = (
            int(queries.time[q]), log.item_ids[int(queries.target[q])], history, candidates,
            bool(queries.is_repeat[q]))
    return out


def test_liverec_pivots_are_500_and_250_steps_before_the_end(log):
    long = from_raw(pl.DataFrame({"user": [1, 2], "item": [1, 2], "start": [0, 990],
                                  "stop": [3, 1000]}), step_minutes=10.0, source="long")
    assert LiveRecSplit().pivots(long) == (500, 750, 1000)
    with pytest.raises(LogError, match="longer than 500 steps"):
        LiveRecSplit().pivots(log)


def test_liverec_test_split(log):
    # u2's C 7-10 stops at max_step, so the test split does not see it (stop < max_step).
    queries = build_queries(log, "test", liverec=SHORT)
    assert query_table(log, queries) == {
        "u1": (8, "C", ["A", "B", "A", "A"], {"A": 1, "B": 1, "C": 1}, False),
        "u3": (8, "A", ["C", "B"], {"A": 0, "B": 0, "C": 2}, False)}
    assert queries.history_time[0].tolist()[-4:] == [0, 2, 5, 6]
    assert queries.history.shape == (2, 16) and (queries.history[:, :12] == -1).all()


def test_liverec_validation_and_train_splits(log):
    # Validation sees rows stopping before 8: u3's B 6-9 is hidden, so u3 has no target.
    validation = query_table(log, build_queries(log, "validation", liverec=SHORT))
    assert validation == {"u1": (6, "A", ["A", "B", "A"], {"A": 0, "B": 1}, True)}
    # Train sees rows stopping before 6: u1's last is B 2-4 (A 5-6 stops at 6).
    train = query_table(log, build_queries(log, "train", liverec=SHORT))
    assert train == {"u1": (2, "B", ["A"], {"B": 1}, False),
                     "u5": (3, "B", ["A"], {"B": 1, "C": 1}, False)}


def test_self_only_targets_and_availability_from_other_users(log):
    queries = build_queries(log, "test", liverec=SHORT)
    # u3's target A at step 8 is live only through u3's own row A 8-9.
    assert self_only(queries).tolist() == [False, True]
    assert query_table(log, without_self_only(queries)) == {
        "u1": (8, "C", ["A", "B", "A", "A"], {"A": 1, "B": 1, "C": 1}, False)}
    # A candidate only the query's user watches leaves that query's candidates.
    frame = pl.DataFrame({"user": ["u1", "u1", "u1", "u2"], "item": ["A", "C", "B", "B"],
                          "start": [0, 1, 2, 2], "stop": [1, 3, 3, 3]})
    small = from_raw(frame, step_minutes=10.0, source="small")
    queries = build_queries(small, "test", protocol="leave-last-out")
    assert query_table(small, queries) == {"u1": (2, "B", ["A", "C"], {"B": 1, "C": 0}, False)}
    assert query_table(small, without_self_only(queries)) == {
        "u1": (2, "B", ["A", "C"], {"B": 1}, False)}
    result = run_protocol(log, {"pop": PopularNow()}, splits=("test",), liverec=SHORT,
                          availability="others")
    test = result["splits"]["test"]
    assert (test["self_only_target_share"], test["dropped_targets"], test["n_targets"]) == \
        (0.5, 1, 1)
    with pytest.raises(ValueError, match="unknown availability"):
        run_protocol(log, {}, availability="nobody")


def test_history_keeps_the_most_recent_rows(log):
    queries = build_queries(log, "test", history=2, liverec=SHORT)
    assert names(log.item_ids, queries.history[0]) == ["A", "A"]
    assert queries.history_time[0].tolist() == [5, 6]
    assert names(log.item_ids, queries.history[1]) == ["C", "B"]


def test_last_visible_by_hand():
    user = np.array([0, 0, 0, 1, 2, 2])
    visible = np.array([True, True, False, True, True, True])
    targets, hist = last_visible(user, visible, history=3)
    assert targets.tolist() == [1, 5]
    assert hist.tolist() == [[-1, -1, 0], [-1, -1, 4]]


def test_leave_last_out(log):
    test = query_table(log, build_queries(log, "test", protocol="leave-last-out"))
    assert test == {
        "u1": (8, "C", ["A", "B", "A", "A"], {"A": 1, "B": 1, "C": 1}, False),
        "u2": (7, "C", ["B"], {"B": 1, "C": 0}, False),
        "u3": (8, "A", ["C", "B"], {"A": 0, "B": 0, "C": 2}, False),
        "u5": (3, "B", ["A"], {"B": 1, "C": 1}, False)}
    validation = query_table(log, build_queries(log, "validation", protocol="leave-last-out"))
    assert validation == {"u1": (6, "A", ["A", "B", "A"], {"A": 0, "B": 1}, True),
                          "u3": (6, "B", ["C"], {"A": 1, "B": 0}, False)}


def rows_of(log, train):
    frame = train.frame.sort(["user", "start"])
    return sorted(zip(names(log.user_ids, frame["user"]), names(log.item_ids, frame["item"]),
                      frame["start"].to_list(), strict=True))


def test_training_rows(log):
    assert rows_of(log, training_log(log, liverec=SHORT)) == [
        ("u1", "A", 0), ("u1", "B", 2), ("u2", "B", 1), ("u3", "C", 3), ("u5", "A", 1),
        ("u5", "B", 3)]
    assert rows_of(log, training_log(log, "leave-last-out")) == [
        ("u1", "A", 0), ("u1", "A", 5), ("u1", "B", 2), ("u3", "C", 3)]
    assert training_log(log, liverec=SHORT).n_items == log.n_items


def test_metrics_by_hand():
    ranks = np.array([0, 1, 4, 9, 10])
    assert hit_rate_at_k(ranks, 1) == pytest.approx(1 / 5)
    assert hit_rate_at_k(ranks, 5) == pytest.approx(3 / 5)
    assert hit_rate_at_k(ranks, 10) == pytest.approx(4 / 5)
    assert ndcg_at_k(ranks, 1) == pytest.approx(1 / 5)
    # 1/log2(2) + 1/log2(3) + 1/log2(6) = 1 + 0.63093 + 0.38685
    assert ndcg_at_k(ranks, 5) == pytest.approx(2.01778 / 5, abs=1e-5)
    # ... + 1/log2(11) = 0.28906
    assert ndcg_at_k(ranks, 10) == pytest.approx(2.30684 / 5, abs=1e-5)
    assert math.isnan(hit_rate_at_k(np.array([], dtype=int), 5))


def test_the_report_uses_the_same_metrics_by_hand():
    ranks, repeat = np.array([0, 1, 4, 9, 10]), np.array([True, False, True, False, False])
    summary = summarise_ranks(ranks, repeat)
    assert summary["all"]["HR@5"]["mean"] == pytest.approx(3 / 5)
    assert summary["all"]["NDCG@10"]["mean"] == pytest.approx(2.30684 / 5, abs=1e-5)
    # repeat targets ranked 0 and 4: NDCG@5 = (1 + 1/log2(6)) / 2
    assert summary["repeat"]["NDCG@5"]["mean"] == pytest.approx((1 + 0.38685) / 2, abs=1e-5)
    assert summary["new"]["HR@1"] == {"mean": 0.0, "ci_low": 0.0, "ci_high": 0.0, "n": 3}


class FixedDraws:
    """Stands in for a Generator: `random(n)` returns the given values."""

    def __init__(self, values):
        self.values = np.asarray(values, dtype=np.float64)

    def random(self, n):
        assert n == len(self.values)
        return self.values


def test_ranks_from_scores_breaks_ties_at_random():
    scores = np.array([0.5, 0.9, 0.1, 0.3, 0.3, 0.3, 0.7])
    offsets = np.array([0, 3, 7])
    targets = np.array([0, 4])  # query 0: 0.5 (one above); query 1: 0.3 (one above, 3 tied)
    for u, expected in ((0.0, 1), (0.5, 2), (0.99, 3)):
        ranks = ranks_from_scores(scores, offsets, targets, FixedDraws([0.7, u]))
        assert ranks.tolist() == [1, expected]
    draws = ranks_from_scores(np.zeros(4 * 3000), np.arange(0, 4 * 3001, 4),
                              np.arange(0, 4 * 3000, 4), np.random.default_rng(0))
    assert np.bincount(draws).tolist() == pytest.approx([750] * 4, abs=90)
    with pytest.raises(ValueError, match="NaN"):
        ranks_from_scores(np.array([np.nan]), np.array([0, 1]), np.array([0]), FixedDraws([0]))


def test_summarise_splits_repeat_and_new():
    out = summarise_ranks(np.array([0, 3, 12]), np.array([True, False, True]))
    assert out["all"]["HR@1"]["mean"] == pytest.approx(1 / 3)
    assert out["repeat"]["HR@1"]["mean"] == pytest.approx(1 / 2)
    assert out["repeat"]["HR@1"]["n"] == 2
    assert out["new"]["HR@5"]["mean"] == 1.0
    assert out["new"]["NDCG@5"]["mean"] == pytest.approx(1 / math.log2(5))
    assert out["all"]["NDCG@10"]["ci_low"] <= out["all"]["NDCG@10"]["mean"]


def test_targets_found_once_and_chunks_do_not_change_ranks(log):
    queries = build_queries(log, "test", protocol="leave-last-out")
    flat = target_index(queries)
    assert (queries.cand_item[flat] == queries.target).all()
    assert query_chunks(np.array([0, 3, 5, 9, 10]), 4) == [(0, 1), (1, 2), (2, 3), (3, 4)]
    assert query_chunks(np.array([0, 3, 5, 9, 10]), 100) == [(0, 4)]
    one = rank_queries(PopularNow(), queries, np.random.default_rng(3), max_candidates=1)
    many = rank_queries(PopularNow(), queries, np.random.default_rng(3))
    assert one.tolist() == many.tolist()
    broken = queries._replace(target=queries.target.copy())
    broken.target[0] = log.item_ids.to_list().index("D")
    with pytest.raises(ValueError, match="exactly once"):
        target_index(broken)


def test_run_protocol_counts_and_hand_results(log):
    result = run_protocol(log, {"pop": PopularNow(), "rep": RepeatFavourite()}, seed=1,
                          liverec=SHORT)
    assert result["split_points"]["pivot_1"] == 6 and result["n_training_rows"] == 6
    test, validation = result["splits"]["test"], result["splits"]["validation"]
    assert (test["n_targets"], test["n_repeat"], test["n_new"]) == (2, 0, 2)
    assert validation["repeat_ratio"] == 1.0 and validation["n_candidates"] == 2
    # Validation, u1 at step 6, target A: REP counts A twice, B once -> rank 0;
    # POP: A has 0 other viewers, B has 1 -> rank 1.
    assert validation["models"]["rep"]["all"]["HR@1"]["mean"] == 1.0
    assert validation["models"]["pop"]["all"]["HR@1"]["mean"] == 0.0
    assert validation["models"]["pop"]["all"]["NDCG@5"]["mean"] == pytest.approx(1 / math.log2(3))
    # Test, u3's target A ties B at 0 viewers behind C (2): POP puts it 2nd or 3rd.
    assert test["models"]["pop"]["all"]["HR@1"]["mean"] <= 0.5
    assert math.isnan(test["models"]["rep"]["repeat"]["HR@1"]["mean"])


def write_twitch(path, n_users=40, n_streamers=12, seed=0):
    """A headerless Twitch CSV: user_id,stream_id,streamer_name,start,stop over ~700 steps."""
    rng = np.random.default_rng(seed)
    lines = []
    for user in range(1, n_users + 1):
        for start in np.sort(rng.integers(0, 700, 12)):
            streamer = rng.integers(0, n_streamers) if rng.random() < 0.5 else user % 3
            stop = start + 1 + rng.integers(0, 30)
            lines.append(f"{user},{1000 + streamer},s{streamer},{start},{stop}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_cli_end_to_end(tmp_path, capsys):
    from liveq.cli.main import main

    log, js, cs = write_twitch(tmp_path / "tiny.csv"), tmp_path / "r.json", tmp_path / "r.csv"
    code = main(["eval-offline", str(log), "--models", "pop,rep,bpr", "--seed", "3",
                 "--json", str(js), "--csv", str(cs)])
    assert code == 0
    out = capsys.readouterr().out
    assert "protocol liverec, seed 3" in out and "NDCG@10" in out and "repeat ratio" in out
    result = json.loads(js.read_text())
    assert result["seed"] == 3 and "random" in result["tie_breaking"]
    assert result["split_points"]["pivot_1"] == result["split_points"]["max_step"] - 500
    test = result["splits"]["test"]
    assert test["n_repeat"] + test["n_new"] == test["n_targets"] > 0
    assert list(test["models"]) == ["pop", "rep", "bpr"]
    assert set(test["models"]["rep"]) == {"all", "repeat", "new"}
    rows = cs.read_text().splitlines()
    assert rows[0] == "split,model,subset,metric,mean,ci_low,ci_high,n"
    assert len(rows) == 1 + 2 * 3 * 3 * 6  # splits x models x subsets x metrics
    assert main(["eval-offline", str(log), "--models", "pop", "--protocol",
                 "leave-last-out"]) == 0
    assert "test: 40 targets" in capsys.readouterr().out
    assert main(["eval-offline", str(log), "--models", "pop", "--availability", "others",
                 "--json", str(js)]) == 0
    assert "availability: other users' rows only" in capsys.readouterr().out
    result = json.loads(js.read_text())
    assert result["availability"] == "others"
    test = result["splits"]["test"]
    assert test["dropped_targets"] == round(test["self_only_target_share"]
                                            * (test["n_targets"] + test["dropped_targets"]))


def test_cli_model_config_sets_and_records_model_settings(tmp_path, capsys):
    from liveq.cli.main import main

    log, js = write_twitch(tmp_path / "t.csv"), tmp_path / "r.json"
    config = tmp_path / "models.yaml"
    config.write_text("bpr: {epochs: 1, dim: 4}\nbc: {max_gradient_steps: 5}\n")
    assert main(["eval-offline", str(log), "--models", "pop,bpr,bc", "--model-config",
                 str(config), "--json", str(js)]) == 0
    settings = json.loads(js.read_text())["model_settings"]
    assert (settings["bpr"]["epochs"], settings["bpr"]["dim"]) == (1, 4)
    assert settings["bc"]["max_gradient_steps"] == 5 and "pop" not in settings
    for text, message in (("bpr: {epoch: 1}", "unknown config key 'bpr.epoch'"),
                          ("dqn: {gamma: 0.5}", "settings for model(s) dqn that --models"),
                          ("pop: {k: 1}", "pop: this model takes no settings")):
        config.write_text(text)
        assert main(["eval-offline", str(log), "--models", "pop,bpr",
                     "--model-config", str(config)]) == 2
        assert message in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "message"), [
    (["--models", "pop,nope"], "unknown model(s) nope"),
    (["--models", ","], "names no model"),
])
def test_cli_rejects_bad_model_lists(tmp_path, capsys, argv, message):
    from liveq.cli.main import main

    assert main(["eval-offline", str(write_twitch(tmp_path / "t.csv")), *argv]) == 2
    assert message in capsys.readouterr().err


def test_cli_short_log_is_a_clear_error(tmp_path, capsys):
    from liveq.cli.main import main

    path = tmp_path / "short.csv"
    path.write_text("1,10,a,0,3\n1,11,b,4,6\n2,10,a,1,5\n")
    assert main(["eval-offline", str(path), "--models", "pop"]) == 2
    assert "longer than 500 steps" in capsys.readouterr().err


def test_a_split_without_targets_gives_nan_metrics():
    frame = pl.DataFrame({"user": [1, 2, 2, 3], "item": [1, 1, 2, 3], "start": [0, 0, 2, 8],
                          "stop": [1, 2, 3, 10]})
    lonely = from_raw(frame, step_minutes=10.0, source="lonely")
    assert build_queries(lonely, "test", liverec=SHORT).n_queries == 0
    result = run_protocol(lonely, {"pop": PopularNow()}, protocol="leave-last-out")
    assert result["splits"]["validation"]["n_targets"] == 0
    assert math.isnan(result["splits"]["validation"]["models"]["pop"]["all"]["HR@1"]["mean"])
    assert result["splits"]["test"]["n_targets"] == 1
