"""POP, REP and BPR on hand-made queries, BPR's negatives, and BPR learning structure."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch

from liveq.core.config import ConfigError
from liveq.data.log import from_raw
from liveq.ranking.availability import live_index
from liveq.ranking.bpr import (
    BPRConfig,
    BPRModel,
    LazyAdam,
    bpr_gradients,
    sample_negatives,
)
from liveq.ranking.models import (
    OFFLINE_MODELS,
    PopularNow,
    RepeatFavourite,
    history_counts,
)
from liveq.ranking.protocol import run_protocol
from liveq.ranking.queries import RankingQueries


def hand_queries() -> RankingQueries:
    """Query 0: history [5, 7, 5], candidates 5, 7, 9 with 3, 8, 1 viewers.
    Query 1: history [2, 4], candidates 2, 4, 6 with 5, 9, 20 viewers (counts tie 1-1-0)."""
    return RankingQueries(
        user=np.array([0, 1], dtype=np.int32), time=np.array([10, 10], dtype=np.int32),
        target=np.array([9, 2], dtype=np.int32),
        history=np.array([[5, 7, 5], [-1, 2, 4]], dtype=np.int32),
        history_time=np.array([[1, 2, 3], [-1, 4, 5]], dtype=np.int32),
        offsets=np.array([0, 3, 6]), cand_item=np.array([5, 7, 9, 2, 4, 6], dtype=np.int32),
        cand_viewers=np.array([3, 8, 1, 5, 9, 20], dtype=np.int32),
        is_repeat=np.array([False, True]))


def order(scores, lo, hi):
    return (np.argsort(-scores[lo:hi], kind="stable") + lo).tolist()


def test_pop_ranks_by_other_viewers_now():
    scores = PopularNow().score(hand_queries())
    assert order(scores, 0, 3) == [1, 0, 2] and order(scores, 3, 6) == [5, 4, 3]


def test_rep_counts_history_and_falls_back_to_pop():
    queries = hand_queries()
    assert history_counts(queries).tolist() == [2, 1, 0, 1, 1, 0]
    scores = RepeatFavourite().score(queries)
    assert order(scores, 0, 3) == [0, 1, 2]  # 5 watched twice, 7 once, 9 never
    assert order(scores, 3, 6) == [4, 3, 5]  # 2 and 4 once each: 4 has more viewers
    # score = count + viewers / (max viewers + 1), max viewers 20
    assert scores[4] == pytest.approx(1 + 9 / 21) and scores[5] == pytest.approx(20 / 21)


def test_live_table_and_negatives_among_live_streamers():
    frame = pl.DataFrame({"user": [0, 1, 2, 0], "item": [0, 1, 2, 3],
                          "start": [0, 0, 0, 1], "stop": [1, 1, 1, 2]})
    train = from_raw(frame, step_minutes=10.0, source="tiny")
    live = live_index(train.frame, train.n_items)  # step 0: items 0, 1, 2; step 1: item 3
    assert live.offsets.tolist() == [0, 3, 4]
    assert live.items.tolist() == [0, 1, 2, 3]
    rng = np.random.default_rng(0)
    item, step = np.array([0] * 500 + [3] * 500), np.array([0] * 500 + [1] * 500)
    negative = sample_negatives(item, step, 4, live, rng)
    assert set(negative[:500].tolist()) == {1, 2}  # the others live at step 0
    assert set(negative[500:].tolist()) == {0, 1, 2}  # item 3 alone at step 1: uniform
    uniform = sample_negatives(item, step, 4, None, rng)
    assert set(uniform[:500].tolist()) == {1, 2, 3}


def test_negatives_use_the_index_of_the_positives_step():
    # items 3 and 4 live at step 7 only: the index starts at the first step, not at 0
    frame = pl.DataFrame({"user": [0, 1, 0], "item": [3, 4, 1], "start": [7, 7, 9],
                          "stop": [8, 8, 10]})
    live = live_index(frame, 5)
    assert live.times.tolist() == [7, 8, 9]
    negative = sample_negatives(np.array([3, 4, 1]), np.array([7, 7, 9]), 5, live,
                                np.random.default_rng(1))
    assert negative[:2].tolist() == [4, 3] and negative[2] != 1


def structured_log(seed: int = 0, n_users: int = 240, n_items: int = 120, groups: int = 6):
    """Users of group g watch only streamers of group g; streamers are live in long runs."""
    rng = np.random.default_rng(seed)
    user = np.repeat(np.arange(n_users), 25)
    members = [np.arange(g, n_items, groups) for g in range(groups)]
    item = np.array([rng.choice(members[u % groups]) for u in user])
    start = rng.integers(0, 1000, len(user))
    stop = start + rng.integers(20, 40, len(user))
    frame = pl.DataFrame({"user": user, "item": item, "start": start, "stop": stop})
    return from_raw(frame, step_minutes=10.0, source="structured")


SMALL = BPRConfig(dim=16, epochs=8, batch_size=256, lr=0.05)


def test_bpr_beats_random_ranking():
    log = structured_log()
    result = run_protocol(log, {"bpr": BPRModel(SMALL), "pop": PopularNow()}, seed=0)
    test = result["splits"]["test"]
    n_live = test["n_candidates"] / test["n_targets"]
    random_hr5 = 5 / n_live  # a uniformly random ranking, ~ candidates per query
    bpr = test["models"]["bpr"]["all"]["HR@5"]["mean"]
    assert n_live > 40 and test["n_targets"] > 100
    assert bpr > 3 * random_hr5, (bpr, random_hr5)
    assert bpr > test["models"]["pop"]["all"]["HR@5"]["mean"]


def test_bpr_training_is_reproducible():
    train = structured_log(n_users=60, n_items=30)
    first, second, third = BPRModel(SMALL), BPRModel(SMALL), BPRModel(SMALL)
    first.fit(train, seed=4)
    second.fit(train, seed=4)
    third.fit(train, seed=5)
    assert np.array_equal(first.user_factors, second.user_factors)
    assert np.array_equal(first.item_factors, second.item_factors)
    assert np.array_equal(first.item_bias, second.item_bias)
    assert not np.array_equal(first.item_factors, third.item_factors)


def test_bpr_fit_leaves_torch_threads_alone():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        BPRModel(BPRConfig(dim=4, epochs=1)).fit(structured_log(n_users=30, n_items=12), 0)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_bpr_unseen_users_and_streamers():
    log = structured_log(n_users=60, n_items=30)
    subset = log.frame.filter(pl.col("user") != 0).filter(pl.col("item") != 0)
    model = BPRModel(SMALL)
    model.fit(type(log)(subset, log.user_ids, log.item_ids, 10.0, "subset"), seed=0)
    assert not model.user_factors[0].any() and not model.item_factors[0].any()
    assert model.item_bias[0] == model.item_bias[1:].min()


def test_bpr_config_is_checked():
    with pytest.raises(ConfigError, match="bpr.dim"):
        BPRModel(BPRConfig(dim=0))
    with pytest.raises(ConfigError, match="negatives"):
        BPRModel(BPRConfig(negatives="popular"))


def test_registry_builds_every_model_by_name():
    assert set(OFFLINE_MODELS) == {"pop", "rep", "bpr", "dqn", "bc", "bandit"}
    for name, build in OFFLINE_MODELS.items():
        model = build()
        assert model.name == name and callable(model.fit) and callable(model.score)


def test_bpr_gradients_match_autograd():
    generator = torch.Generator().manual_seed(0)
    p_u, q_i, q_j = (torch.randn(5, 3, generator=generator, requires_grad=True)
                     for _ in range(3))
    b_i, b_j = (torch.randn(5, generator=generator, requires_grad=True) for _ in range(2))
    grads = bpr_gradients(p_u, q_i, q_j, b_i, b_j, l2=0.1)
    grads.loss.backward()
    for mine, leaf in zip(grads[1:], (p_u, q_i, q_j, b_i, b_j), strict=True):
        assert torch.allclose(mine, leaf.grad, atol=1e-6)


def test_lazy_adam_matches_adam_on_touched_rows():
    table = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    reference = table[[0, 2]].clone().requires_grad_(True)
    adam = torch.optim.Adam([reference], lr=0.1)
    lazy = LazyAdam(table, lr=0.1)
    for _ in range(3):
        # row 2 appears twice: its gradients add up
        rows, grads = torch.tensor([0, 2, 2]), torch.tensor([[1.0, -1.0], [0.5, 0.5], [0.5, 2.0]])
        lazy.step(rows, grads)
        reference.grad = torch.tensor([[1.0, -1.0], [1.0, 2.5]])
        adam.step()
    assert torch.allclose(table[[0, 2]], reference.detach(), atol=1e-6)
    assert table[1].tolist() == [3.0, 4.0]
