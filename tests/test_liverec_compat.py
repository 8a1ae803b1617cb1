"""`--compat liverec` against a transcription of the LiveRec code (tests/liverec_reference.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from liveq.data.log import from_raw
from liveq.ranking.liverec import (
    HistoryCountRep,
    TrainingCountPop,
    liverec_is_repeat,
    liverec_targets,
    offline_models,
)
from liveq.ranking.protocol import build_queries, run_protocol, training_log
from liveq.ranking.queries import RankingQueries

sys.path.insert(0, str(Path(__file__).parent))
import liverec_reference as reference  # noqa: E402

SEEDS = 40  # tie-breaking draws averaged on both sides (a single draw moves HR by ~0.05)
SUBSETS = {"all": "all", "new": "new", "repeat": "rep"}


@pytest.fixture(scope="module")
def synth_log(tmp_path_factory):
    from liveq.cli.main import main

    path = tmp_path_factory.mktemp("liverec") / "synth.csv"
    assert main(["data", "synth", "--format", "twitch", "--out", str(path), "--config",
                 "synth_browse", "--policy", "random", "--epsilon", "1", "--days", "4",
                 "--sessions", "40", "--seed", "0"]) == 0
    return path


def _liveq_liverec(path, seeds):
    from liveq.data import load_log

    log = load_log(str(path), format="twitch")
    registry = offline_models("liverec")
    return [run_protocol(log, {"pop": registry["pop"](), "rep": registry["rep"]()}, seed=seed,
                         splits=("test",), compat="liverec")["splits"]["test"]
            for seed in seeds]


def test_compat_liverec_matches_the_liverec_code_within_001(synth_log):
    rows = pl.read_csv(synth_log, has_header=False,
                       new_columns=["user", "stream", "streamer", "start", "stop"])
    assert rows.select("user", "start").is_unique().all()  # no same-start rows of a user
    ours = _liveq_liverec(synth_log, range(SEEDS))
    prepared = reference.prepare(synth_log)
    for ours_name, ref_name in (("pop", "POP"), ("rep", "REP")):
        theirs = [reference.evaluate(synth_log, ref_name, seed, prepared)
                  for seed in range(SEEDS)]
        for subset, ref_subset in SUBSETS.items():
            for k in (1, 5, 10):
                mine = np.mean([o["models"][ours_name][subset][f"HR@{k}"]["mean"]
                                for o in ours])
                code = np.mean([t[ref_subset][f"h{k:02d}"] for t in theirs])
                assert abs(mine - code) < 0.01, (ours_name, subset, k, mine, code)


def test_compat_liverec_has_the_codes_targets_and_repeat_split(synth_log):
    user, streamer, start, stop = reference.load(synth_log)
    max_step = int(stop.max())
    seqs = reference.sequences(user, streamer, start, stop, max_step - 250, max_step)
    repeats = sum(s["pos"][-1] in [p for p in s["pos"][:-1] if p] for s in seqs)
    test = _liveq_liverec(synth_log, [0])[0]
    assert (test["n_targets"], test["n_repeat"]) == (len(seqs), repeats)


def _ours_by_target(log, queries, name):
    """`{(user, step): (is_repeat, target, sorted [(candidate, score)])}`, by names."""
    model = offline_models("liverec")[name]()
    model.fit(training_log(log), 0)
    scores = model.score(queries)
    users, items = log.user_ids.cast(str).to_list(), log.item_ids.cast(str).to_list()
    out = {}
    for i in range(queries.n_queries):
        lo, hi = queries.offsets[i], queries.offsets[i + 1]
        candidates = [items[c] for c in queries.cand_item[lo:hi]]
        out[users[queries.user[i]], int(queries.time[i])] = (
            bool(queries.is_repeat[i]), items[queries.target[i]],
            sorted(zip(candidates, scores[lo:hi].tolist(), strict=True)))
    return out


def _theirs_by_target(path, name):
    _, _, _, _, user_names, streamer_names = reference.load(path, names=True)
    seqs, ts, cnt_train = reference.prepare(path)
    out = {}
    for seq in seqs:
        is_rep, av, scores = reference.scored(name, seq, ts, cnt_train)
        candidates = [streamer_names[a] for a in av]
        out[user_names[seq["user"]], seq["ts"]] = (
            is_rep, streamer_names[seq["pos"][-1]],
            sorted(zip(candidates, map(float, scores), strict=True)))
    return out


def test_compat_liverec_scores_every_candidate_as_the_code_does(synth_log):
    """Per target, exactly: the repeat flag, the candidates and POP's and REP's scores."""
    from liveq.data import load_log

    log = load_log(str(synth_log), format="twitch")
    queries = liverec_targets(build_queries(log, "test"))
    for ours_name, ref_name in (("pop", "POP"), ("rep", "REP")):
        mine = _ours_by_target(log, queries, ours_name)
        theirs = _theirs_by_target(synth_log, ref_name)
        assert len(mine) > 1000 and mine == theirs


def test_default_mode_counts_the_oldest_history_item_as_a_repeat(synth_log):
    from liveq.data import load_log

    log = load_log(str(synth_log), format="twitch")
    queries = build_queries(log, "test")
    theirs = liverec_is_repeat(queries.history, queries.target)
    assert np.all(theirs <= queries.is_repeat)  # liveq's rule only adds repeats
    extra = queries.is_repeat & ~theirs
    assert extra.sum() > 0
    oldest = queries.history[np.arange(len(extra)), np.argmax(queries.history >= 0, axis=1)]
    assert np.all(queries.target[extra] == oldest[extra])  # exactly the off-by-one
    default = run_protocol(log, {"pop": offline_models()["pop"]()}, splits=("test",))
    assert default["splits"]["test"]["n_repeat"] == int(queries.is_repeat.sum())
    compat = _liveq_liverec(synth_log, [0])[0]
    assert compat["n_repeat"] == int(theirs.sum()) < default["splits"]["test"]["n_repeat"]


def _queries(history, target, cand_item):
    history = np.array(history, dtype=np.int32)
    n = len(history)
    cand = np.array(cand_item, dtype=np.int32)
    return RankingQueries(user=np.arange(n, dtype=np.int32), time=np.zeros(n, np.int32),
                          target=np.array(target, dtype=np.int32), history=history,
                          history_time=np.zeros_like(history),
                          offsets=np.array([0, len(cand)] if n == 1 else [0] + [len(cand)] * n),
                          cand_item=cand, cand_viewers=np.zeros(len(cand), np.int32),
                          is_repeat=np.zeros(n, bool))


def test_rules_by_hand():
    history = np.array([[-1, 5, 7, 7], [-1, -1, 5, 8], [3, 4, 5, 6]])
    assert liverec_is_repeat(history, np.array([5, 8, 6])).tolist() == [False, True, True]
    assert liverec_is_repeat(history, np.array([7, 5, 3])).tolist() == [True, False, False]
    rep = HistoryCountRep()
    # REP drops the most recent item (8), counts the rest; no viewer order
    assert rep.score(_queries([[5, 5, 8]], [5], [5, 8, 9])).tolist() == [2.0, 0.0, 0.0]
    log = from_raw(pl.DataFrame({"user": [1, 2, 2, 3], "item": ["a", "a", "b", "a"],
                                 "start": [0, 1, 3, 4], "stop": [2, 3, 4, 5]}),
                   step_minutes=10.0, source="hand")
    pop = TrainingCountPop()
    pop.fit(log, 0)
    a, b = (log.item_ids.to_list().index(name) for name in ("a", "b"))
    assert pop.score(_queries([[a]], [b], [b, a])).tolist() == [1.0, 3.0]


def test_cli_compat(synth_log, tmp_path, capsys):
    from liveq.cli.main import main

    out = tmp_path / "r.json"
    assert main(["eval-offline", str(synth_log), "--compat", "liverec", "--models",
                 "pop,rep", "--json", str(out)]) == 0
    assert "compat liverec: the LiveRec code's POP" in capsys.readouterr().out
    assert json.loads(out.read_text())["compat"] == "liverec"
    assert main(["eval-offline", str(synth_log), "--compat", "paper", "--models", "pop"]) == 2
    err = capsys.readouterr().err
    assert "unknown --compat value 'paper'" in err and "liveq, liverec" in err
    with pytest.raises(ValueError, match="unknown compat mode 'x'"):
        offline_models("x")
