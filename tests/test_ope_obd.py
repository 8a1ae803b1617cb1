"""Open Bandit proof: our reading, BTS distribution and estimators agree with obp's own."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import obp  # a dev dependency: this test must fail, not skip, when it is missing
import pandas as pd
import pytest
from obp.ope import (
    DirectMethod,
    DoublyRobust,
    InverseProbabilityWeighting,
    RegressionModel,
    SelfNormalizedInverseProbabilityWeighting,
    SwitchDoublyRobust,
)
from obp.policy import BernoulliTS
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold
from sklearn.preprocessing import LabelEncoder

from liveq.cli.main import main
from liveq.data.log import LogError
from liveq.experiments.ope_obd import (
    OBP_REFERENCE,
    OBDConfig,
    OBDInputs,
    bandit_of,
    bts_action_dist,
    obd_root,
    obp_same_inputs,
    read_obd,
)
from liveq.ope.estimators import (
    RewardFeatures,
    cross_fit,
    design_matrix,
    dm,
    dr,
    fit_logistic,
    ips,
    snips,
    switch_dr,
)

ROOT = Path(obp.__file__).parent / "dataset" / "obd"


@pytest.fixture(scope="module")
def log():
    return read_obd("random", "all")


@pytest.fixture(scope="module")
def folds(log):
    """obp's folds: sklearn KFold(3, shuffle, random_state=12345) as fold ids."""
    ids = np.empty(len(log.action), dtype=np.int64)
    split = KFold(n_splits=3, shuffle=True, random_state=12345).split(log.context)
    for k, (_, test) in enumerate(split):
        ids[test] = k
    return ids


@pytest.fixture(scope="module")
def dist():
    return bts_action_dist("all", 80, 3, n_sim=100_000, seed=12345)


def test_reading_repeats_obps_preprocessing(log):
    """obp's `OpenBanditDataset.load_raw_data` and `pre_process`, written for pandas 2."""
    data = pd.read_csv(ROOT / "random/all/all.csv", index_col=0).sort_values("timestamp")
    items = pd.read_csv(ROOT / "random/all/item_context.csv", index_col=0)
    context = pd.get_dummies(data.loc[:, data.columns.str.contains("user_feature")],
                             drop_first=True).values
    encoded = items.drop(columns="item_feature_0").apply(LabelEncoder().fit_transform)
    action_context = pd.concat([encoded, items["item_feature_0"]], axis=1).values
    assert np.array_equal(log.context, context.astype(float))
    assert np.array_equal(log.action_context, action_context.astype(float))
    assert np.array_equal(log.action, data["item_id"].values)
    assert np.array_equal(log.position, data["position"].values - 1)
    assert np.array_equal(log.reward, data["click"].values)
    assert np.array_equal(log.pscore, data["propensity_score"].values)


@pytest.mark.parametrize(("campaign", "n_actions"), [("all", 80), ("men", 34)])
def test_bts_distribution_is_obps_to_the_bit(campaign, n_actions):
    theirs = BernoulliTS(n_actions=n_actions, len_list=3, is_zozotown_prior=True,
                         campaign=campaign, random_state=7).compute_batch_action_dist(
        n_rounds=1, n_sim=3000)[0]
    assert np.array_equal(bts_action_dist(campaign, n_actions, 3, n_sim=3000, seed=7), theirs)


def test_estimators_equal_obps_on_identical_inputs(log, dist):
    rng = np.random.default_rng(0)
    n = len(log.action)
    q_hat = rng.random((n, 80)) * 0.01
    inputs = OBDInputs(log, dist, q_hat, truth=0.0)
    ours = bandit_of(inputs)
    args = dict(reward=log.reward, action=log.action, position=log.position, pscore=log.pscore,
                action_dist=np.repeat(dist[None], n, axis=0),
                estimated_rewards_by_reg_model=np.repeat(q_hat[:, :, None], 3, axis=2))
    pairs = [(ips, InverseProbabilityWeighting()),
             (snips, SelfNormalizedInverseProbabilityWeighting()),
             (dm, DirectMethod()), (dr, DoublyRobust()),
             (lambda d: switch_dr(d, tau=5.0), SwitchDoublyRobust(tau=5.0))]
    for mine, theirs in pairs:
        assert mine(ours) == pytest.approx(theirs.estimate_policy_value(**args), rel=1e-9,
                                           abs=1e-15)
    config = OBDConfig()
    same = obp_same_inputs(inputs, config)
    for name, value in same.items():
        assert value == pytest.approx({"ips": ips, "snips": snips, "dm": dm, "dr": dr}.get(
            name, lambda d: switch_dr(d, tau=config.estimators.switch_tau))(ours), rel=1e-9)


def test_logistic_fit_is_the_exact_optimum_sklearn_approaches(log):
    rows = np.flatnonzero(log.position == 0)
    x = design_matrix(RewardFeatures(context=log.context, action_context=log.action_context),
                      rows, log.action[rows])
    w, b = fit_logistic(x, log.reward[rows], l2=1.0)
    tight = LogisticRegression(C=1.0, tol=1e-12, max_iter=20_000).fit(x, log.reward[rows])
    np.testing.assert_allclose(w, tight.coef_[0], atol=1e-4)
    assert b == pytest.approx(tight.intercept_[0], abs=1e-4)


def test_obps_pipeline_gives_the_reference_and_ours_agrees(log, folds, dist):
    """obp 0.4.1's own pipeline reproduces OBP_REFERENCE; our reward model on the same
    folds gives the same DM and DR to within sklearn's solver tolerance."""
    n = len(log.action)
    model = RegressionModel(n_actions=80, len_list=3, action_context=log.action_context,
                            base_model=LogisticRegression(max_iter=1000, random_state=12345))
    theirs_q = model.fit_predict(context=log.context, action=log.action, reward=log.reward,
                                 position=log.position, pscore=log.pscore, n_folds=3,
                                 random_state=12345)
    args = dict(reward=log.reward, action=log.action, position=log.position, pscore=log.pscore,
                action_dist=np.repeat(dist[None], n, axis=0),
                estimated_rewards_by_reg_model=theirs_q)
    reference = {"ips": InverseProbabilityWeighting(),
                 "snips": SelfNormalizedInverseProbabilityWeighting(),
                 "dm": DirectMethod(), "dr": DoublyRobust()}
    for name, estimator in reference.items():
        assert estimator.estimate_policy_value(**args) == pytest.approx(
            OBP_REFERENCE["all"][name], abs=1e-9), name
    our_q = cross_fit(RewardFeatures(context=log.context, action_context=log.action_context),
                      log.action, log.reward, n_actions=80, kind="logistic", l2=1.0,
                      folds=folds, groups=log.position)
    ours = bandit_of(OBDInputs(log, dist, our_q, truth=0.0))
    assert dm(ours) == pytest.approx(OBP_REFERENCE["all"]["dm"], rel=2e-3)
    assert dr(ours) == pytest.approx(OBP_REFERENCE["all"]["dr"], rel=2e-3)


def test_cli_obd_table_and_json(tmp_path, capsys):
    js, cs = tmp_path / "obd.json", tmp_path / "obd.csv"
    assert main(["ope", "obd", "--bootstrap", "50", "--n-sim", "20000", "--json", str(js),
                 "--csv", str(cs)]) == 0
    out = json.loads(js.read_text())
    rows = {r["estimator"]: r for r in out["rows"]}
    assert list(rows) == ["ips", "snips", "dm", "dr", "switch-dr"]
    assert rows["ips"]["truth"] == pytest.approx(0.0042)
    assert rows["dm"]["obp_reference"] == OBP_REFERENCE["all"]["dm"]
    for r in rows.values():
        assert r["ci_low"] <= r["estimate"] <= r["ci_high"]
        assert r["relative_error"] == pytest.approx((r["estimate"] - 0.0042) / 0.0042)
    assert cs.read_text().startswith("estimator,estimate,ci_low,ci_high,truth")
    assert "obp 0.4.1" in capsys.readouterr().out


def test_cli_obd_usage_errors(capsys):
    assert main(["ope", "obd", "--seeds", "3"]) == 2
    assert "--seeds do(es) not apply" in capsys.readouterr().err
    assert main(["ope", "obd", "--n-sim", "5"]) == 2
    assert "n_sim must be at least 100" in capsys.readouterr().err


def test_missing_obp_is_a_clear_error(monkeypatch, capsys):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "obp" else real(name, *a))
    assert main(["ope", "obd"]) == 2
    assert "needs the Open Bandit Pipeline package" in capsys.readouterr().err


def write_sample(root: Path, rows: str) -> None:
    folder = root / "random" / "all"
    folder.mkdir(parents=True)
    (folder / "all.csv").write_text(
        ",timestamp,item_id,position,click,propensity_score,user_feature_0,user_feature_1,"
        "user_feature_2,user_feature_3\n" + rows)
    (folder / "item_context.csv").write_text(
        ",item_id,item_feature_0,item_feature_1,item_feature_2,item_feature_3\n"
        "0,0,0.5,a,b,c\n1,1,-0.5,d,b,c\n")


@pytest.mark.parametrize(("rows", "message"), [
    ("0,t0,0,1,0,0.5,u,v,w,x\n1,t1,7,2,0,0.5,u,v,w,x\n",
     "line 3, column item_id: invalid value 7"),
    ("0,t1,0,1,0,0.5,u,v,w,x\n1,t0,1,0,0,0.5,u,v,w,x\n",  # sorted by time: line 3 first
     "line 3, column position: invalid value 0"),
    ("0,t0,0,1,yes,0.5,u,v,w,x\n", "line 2, column click: invalid value 'yes'"),
    ("0,t0,0,1,0,,u,v,w,x\n", "line 2, column propensity_score: invalid value None"),
])
def test_bad_rows_name_file_line_and_column(tmp_path, rows, message):
    write_sample(tmp_path, rows)
    with pytest.raises(LogError, match="all.csv, " + message):
        read_obd("random", "all", root=tmp_path)


def test_missing_column_is_named(tmp_path):
    folder = tmp_path / "random" / "all"
    folder.mkdir(parents=True)
    (folder / "all.csv").write_text("timestamp,item_id,position\nt0,0,1\n")
    with pytest.raises(LogError, match="missing column.*click"):
        read_obd("random", "all", root=tmp_path)


def test_obd_root_is_inside_obp():
    assert obd_root() == ROOT
