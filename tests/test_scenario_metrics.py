"""`liveq compare`'s per-scenario metrics (ads: revenue, CTR, CVR, ROI, budget spent, pacing
error, lost minutes; shop: the funnel; room: gifts, comments, follows, prompts, early
leaves), checked against numbers worked out by hand on worlds made certain."""

from __future__ import annotations

import json

import numpy as np
import pytest

import liveq  # noqa: F401  (registers the envs)
from liveq.core.report import format_table
from liveq.eval.online import evaluate
from liveq.policies.base import Action
from liveq.sim.vector import make_vec_env


class Always:
    """Every slot takes `action` every step."""

    slate_size = 1

    def __init__(self, action: int):
        self.action = action

    def act(self, obs, mask=None) -> Action:
        n = len(obs["mask"]) if isinstance(obs, dict) else len(obs)
        return Action(np.full(n, self.action, dtype=np.int64), np.ones(n))


def _mean(summary, metric):
    return summary[metric]["mean"]


def test_ad_metrics_by_hand():
    """One campaign that every viewer clicks and converts on, a budget that never binds, no
    leaving, 4 opportunities a day: 4 ads, CTR 1, CVR 1, nothing lost, and a pacing error
    of mean(|0 - 1/4|, |0 - 2/4|, |0 - 3/4|, |0 - 1|) = 0.625 (spent share ~ 0)."""
    kwargs = {"n_campaigns": 1, "day_minutes": 20.0, "targeting_share": 1.0,
              "ctr_base": 50.0, "cvr_base": 50.0, "leave_base": 0.0, "leave_per_ad": 0.0,
              "budget_mean": 1e6, "mean_session_minutes": 1e6}
    env = make_vec_env("liveq/AdPlacement-v0", 4, kwargs)
    s = evaluate(lambda _e: Always(0), env, 8, seed=0)
    assert _mean(s, "impressions") == 4.0 and _mean(s, "length") == 4.0
    assert _mean(s, "ctr") == 1.0 and _mean(s, "cvr") == 1.0
    assert _mean(s, "lost_minutes") == 0.0
    assert _mean(s, "pacing_error") == pytest.approx(0.625, abs=1e-4)
    assert _mean(s, "budget_spent") == pytest.approx(0.0, abs=1e-4)
    # every click pays the bid (0.5..1.5 x bid_mean): revenue is 4 bids a day, all returned
    assert 2.0 <= _mean(s, "revenue") <= 6.0
    assert _mean(s, "return") == pytest.approx(_mean(s, "revenue"))
    # ROI is conversion value per spend: one conversion per click at value/bid, positive
    assert _mean(s, "roi") > 0
    table = format_table({"always": s}).splitlines()[0]
    for label in ("revenue", "CTR", "CVR", "ROI", "budget spent", "pacing err", "lost min"):
        assert label in table


def test_a_budget_that_binds_is_reported_spent():
    """Budgets far below one click's bid run out on the first click: by hand the day's
    budget is spent in full (share 1) while the even schedule wanted it over the day."""
    kwargs = {"n_campaigns": 1, "day_minutes": 20.0, "targeting_share": 1.0,
              "ctr_base": 50.0, "leave_base": 0.0, "leave_per_ad": 0.0, "budget_mean": 0.01,
              "mean_session_minutes": 1e6}
    env = make_vec_env("liveq/AdPlacement-v0", 4, kwargs)
    s = evaluate(lambda _e: Always(0), env, 8, seed=0)
    assert _mean(s, "budget_spent") == pytest.approx(1.0)
    assert _mean(s, "impressions") == 1.0  # then the campaign is masked: no ad
    # pacing: spent share 1 from the first step, elapsed 1/4..1 -> mean(3/4, 2/4, 1/4, 0)
    assert _mean(s, "pacing_error") == pytest.approx(0.375)


def test_room_metrics_by_hand():
    """Nobody leaves (hazards 0): every stay lasts max_minutes = 5, none ends early, and
    prompting a comment every minute shows 5 prompts a stay."""
    kwargs = {"max_minutes": 5, "leave_rate": 0.0, "annoyance_leave": 0.0}
    env = make_vec_env("liveq/LiveRoom-v0", 4, kwargs)
    s = evaluate(lambda _e: Always(2), env, 8, seed=0)
    assert _mean(s, "length") == 5.0 and _mean(s, "prompts") == 5.0
    assert _mean(s, "early_leave") == 0.0
    quiet = evaluate(lambda _e: Always(0), make_vec_env("liveq/LiveRoom-v0", 4, kwargs), 8, 0)
    assert _mean(quiet, "prompts") == 0.0
    assert list(s)[:2] == ["return", "length"] and {"gifts", "gift_value", "comments",
                                                   "follows"} <= set(s)


def test_shop_metrics_follow_the_funnel():
    """The default reward is the price paid, so return equals revenue; a certain click,
    cart and purchase gives CTR 1 and one purchase per click."""
    sure = {"click_bias": 40.0, "cart_bias": 40.0, "purchase_prob": 1.0,
            "price_sensitivity": 0.0, "budget_log_mean": 20.0, "stock_mean": 1000.0,
            "max_session_steps": 3, "n_products": 50, "n_candidates": 5}
    env = make_vec_env("liveq/Ecommerce-v0", 2, sure)
    s = evaluate(lambda _e: Always(0), env, 4, seed=0)
    assert _mean(s, "ctr") == 1.0 and _mean(s, "purchase_rate") == 1.0
    assert _mean(s, "purchases") == _mean(s, "length")
    assert _mean(s, "return") == pytest.approx(_mean(s, "revenue"))


def test_compare_writes_the_ad_metrics_to_table_and_json(tmp_path, capsys):
    from liveq.cli.main import main

    out = tmp_path / "ads.json"
    assert main(["compare", "--config", "ads_small", "--agents", "greedy_ecpm,budget_aware",
                 "--episodes", "16", "--out", str(tmp_path / "runs"), "--json",
                 str(out)]) == 0
    header = capsys.readouterr().out.splitlines()[0]
    assert "CTR" in header and "pacing err" in header and "lost min" in header
    saved = json.loads(out.read_text())
    assert {"revenue", "ctr", "cvr", "roi", "budget_spent", "pacing_error",
            "lost_minutes"} <= set(saved["greedy_ecpm"])
