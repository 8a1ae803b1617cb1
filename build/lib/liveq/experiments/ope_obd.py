"""Open Bandit Dataset proof: estimate Bernoulli TS from the uniform-random policy's log.

ZOZOTOWN ran two policies side by side on the same traffic, a uniform-random one and
Bernoulli Thompson sampling (BTS), each recommending 3 of 80 items (campaign "all").
We evaluate BTS off-policy on the random log and compare with the mean click of the BTS
log itself (its on-policy value), as Saito et al. (2021) do. The small sample (10,000
rounds per log) ships inside the `obp` package, which is therefore needed here; the CSVs
are read directly because obp's `OpenBanditDataset` fails on pandas 2.

Preprocessing repeats obp's defaults so that the inputs match its own: round features are
the user features one-hot encoded with the first category of each dropped; item features
are the label-encoded categorical item features followed by `item_feature_0`; positions
1..3 become 0..2 and the reward model is one logistic regression per position.

The target action distribution is BTS with ZOZOTOWN's production prior, simulated like
obp's `BernoulliTS.compute_batch_action_dist` (the same draws, vectorised). It cannot be
read from the BTS log: there `propensity_score` is only the logged item's probability,
it drifts over the week as the production posterior moved (hundreds of values per
item and position), and one (item, position) pair never appears.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import polars as pl

from liveq.core.config import ConfigError, load_yaml, require
from liveq.core.errors import UsageError
from liveq.data.log import LogError
from liveq.ope.estimators import (
    EstimatorConfig,
    LoggedBandit,
    RewardFeatures,
    bootstrap_cis,
    cross_fit,
    fold_ids,
    make_estimators,
)

CAMPAIGNS = ("all", "men", "women")
USER_FEATURES = tuple(f"user_feature_{i}" for i in range(4))
ITEM_CATEGORICAL = ("item_id", "item_feature_1", "item_feature_2", "item_feature_3")
LOG_COLUMNS = ("timestamp", "item_id", "position", "click", "propensity_score", *USER_FEATURES)

# obp 0.4.1's own pipeline on this sample (campaign "all": BernoulliTS with the ZOZOTOWN
# prior, random_state 12345, n_sim 100,000; sklearn LogisticRegression(max_iter=1000),
# 3 folds, random_state 12345). tests/test_ope_obd.py re-runs it and checks these figures.
OBP_REFERENCE = {"all": {"ips": 0.004552880, "snips": 0.004775833, "dm": 0.003386592,
                         "dr": 0.004645605}}


class OBDLog(NamedTuple):
    """One campaign's log of one behaviour policy, preprocessed as obp does."""

    action: np.ndarray  # (n,) int item id
    position: np.ndarray  # (n,) int, 0 = top slot
    reward: np.ndarray  # (n,) float click
    pscore: np.ndarray  # (n,) behaviour probability of (item, position)
    context: np.ndarray  # (n, d_context) float one-hot user features
    action_context: np.ndarray  # (n_actions, 5) float item features
    path: Path


def obp_package() -> Path:
    """The installed obp package's folder, found without importing obp (slow: sklearn, torch)."""
    spec = importlib.util.find_spec("obp")
    if spec is None or spec.origin is None:
        raise UsageError("`liveq ope obd` needs the Open Bandit Pipeline package, which "
                         "ships the dataset sample and BTS prior: pip install obp")
    return Path(spec.origin).parent


def obd_root() -> Path:
    """The `obd` sample folder shipped inside obp."""
    return obp_package() / "dataset" / "obd"


def zozotown_prior(campaign: str) -> tuple[np.ndarray, np.ndarray]:
    """`(n_actions,)` Beta prior (alpha, beta) of ZOZOTOWN's production BTS, from obp's file."""
    path = obp_package() / "policy" / "conf" / "prior_bts.yaml"
    prior = load_yaml(path)
    try:
        entry = prior[campaign]
        return np.asarray(entry["alpha"], float), np.asarray(entry["beta"], float)
    except (KeyError, TypeError):
        raise ConfigError(f"{path}: no alpha and beta for campaign '{campaign}'") from None


def _read_csv(path: Path) -> pl.DataFrame:
    if not path.is_file():
        raise LogError(f"{path}: file not found")
    try:
        return pl.read_csv(path, infer_schema_length=None)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise LogError(f"{path}: not a readable CSV ({exc})") from None


def _require_columns(frame: pl.DataFrame, columns: tuple[str, ...], path: Path) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise LogError(f"{path}: missing column(s) {', '.join(missing)}")


def _column(frame: pl.DataFrame, name: str, ok: Callable[[np.ndarray], np.ndarray],
            path: Path) -> np.ndarray:
    """`(n,)` float64 values of a numeric column; LogError at the first bad one.

    `frame` carries each row's file line in `_line` (rows may have been sorted).
    """
    values = frame[name].cast(pl.Float64, strict=False).to_numpy()  # unparsable -> nan
    with np.errstate(invalid="ignore"):
        bad = np.flatnonzero(np.isnan(values) | ~ok(values))
    if len(bad):
        row = int(bad[0])
        raise LogError(f"{path}, line {frame['_line'][row]}, column {name}: invalid value "
                       f"{frame[name][row]!r}")
    return values


def one_hot_drop_first(frame: pl.DataFrame) -> np.ndarray:
    """`(n, d)` float: pandas.get_dummies(frame, drop_first=True) for string columns."""
    blocks = []
    for name in frame.columns:
        values = frame[name].cast(pl.String).to_numpy()
        categories = np.unique(values)[1:]
        blocks.append(values[:, None] == categories[None, :])
    return np.concatenate(blocks, axis=1).astype(np.float64)


def item_features(path: Path) -> np.ndarray:
    """`(n_items, 5)`: label codes of item_id and item_feature_1..3, then item_feature_0.

    obp label-encodes every column but `item_feature_0`, the item id included.
    """
    items = _read_csv(path)
    _require_columns(items, ("item_feature_0", *ITEM_CATEGORICAL), path)
    item_id = items["item_id"].to_numpy()
    if not np.array_equal(np.sort(item_id), np.arange(len(items))):
        raise LogError(f"{path}, column item_id: ids must be 0..{len(items) - 1}, once each")
    items = items.sort("item_id")
    codes = [np.unique(items[c].to_numpy(), return_inverse=True)[1]
             for c in ITEM_CATEGORICAL]
    return np.column_stack([*codes, items["item_feature_0"].to_numpy()]).astype(np.float64)


def read_obd(behaviour: str, campaign: str, root: Path | None = None) -> OBDLog:
    """Read `{root}/{behaviour}/{campaign}/{campaign}.csv` and its `item_context.csv`."""
    folder = (root or obd_root()) / behaviour / campaign
    path = folder / f"{campaign}.csv"
    frame = _read_csv(path)
    _require_columns(frame, LOG_COLUMNS, path)
    frame = frame.with_row_index("_line", offset=2).sort("timestamp", maintain_order=True)
    action_context = item_features(folder / "item_context.csv")
    n_items = len(action_context)
    action = _column(frame, "item_id", lambda v: (v >= 0) & (v < n_items) & (v % 1 == 0), path)
    slots = _column(frame, "position", lambda v: (v >= 1) & (v % 1 == 0), path)
    position = np.unique(slots, return_inverse=True)[1]  # dense ranks, like obp
    reward = _column(frame, "click", lambda v: (v == 0) | (v == 1), path)
    pscore = _column(frame, "propensity_score", lambda v: (v > 0) & (v <= 1), path)
    context = one_hot_drop_first(frame.select(USER_FEATURES))
    return OBDLog(action.astype(np.int64), position, reward, pscore, context,
                  action_context, path)


def bts_action_dist(campaign: str, n_actions: int, len_list: int, n_sim: int,
                    seed: int) -> np.ndarray:
    """`(n_actions, len_list)` P(item at position) of BTS with the ZOZOTOWN prior.

    Each draw ranks the items by one Beta sample each and shows the top `len_list`. The
    draws come from `numpy.random.RandomState(seed)` in obp's order, so this equals
    `obp.policy.BernoulliTS(n_actions, len_list, is_zozotown_prior=True, campaign=campaign,
    random_state=seed).compute_batch_action_dist(n_sim=n_sim)[0]`, about 5x faster.
    """
    alpha, beta = zozotown_prior(campaign)
    if len(alpha) != n_actions:
        raise ConfigError(f"the BTS prior of campaign '{campaign}' has {len(alpha)} items, "
                          f"the log {n_actions}")
    rng = np.random.RandomState(seed)  # obp's generator; numpy Generators draw differently
    counts = np.zeros((n_actions, len_list))
    for start in range(0, n_sim, 10_000):
        size = (min(10_000, n_sim - start), n_actions)
        draws = rng.beta(np.broadcast_to(alpha, size), np.broadcast_to(beta, size))
        top = np.argsort(draws, axis=1)[:, ::-1][:, :len_list]  # (chunk, len_list)
        for pos in range(len_list):
            counts[:, pos] += np.bincount(top[:, pos], minlength=n_actions)
    return counts / n_sim


@dataclass(kw_only=True)
class OBDConfig:
    """What `liveq ope obd` evaluates and how."""

    campaign: str = "all"
    """ZOZOTOWN campaign: all, men or women."""
    n_sim: int = 100_000
    """Monte Carlo draws of the BTS action distribution."""
    policy_seed: int = 12345
    """Seed of the BTS simulation (obp's examples use 12345)."""
    estimators: EstimatorConfig = field(default_factory=EstimatorConfig)
    """Estimator, reward-model and bootstrap settings."""

    def validate(self) -> None:
        require(self.campaign in CAMPAIGNS, f"campaign must be one of {list(CAMPAIGNS)}, "
                f"got {self.campaign!r}")
        require(self.n_sim >= 100, f"n_sim must be at least 100, got {self.n_sim}")
        self.estimators.validate()


class OBDInputs(NamedTuple):
    """Everything the estimators see, ready to hand to obp as well."""

    log: OBDLog
    action_dist: np.ndarray  # (n_actions, len_list) BTS distribution
    q_hat: np.ndarray  # (n, n_actions) reward model at each round's position
    truth: float  # mean click of the BTS log
    truth_half_width: float = 0.0  # half-width of the truth's normal 95% interval


def bandit_of(inputs: OBDInputs) -> LoggedBandit:
    """The random log as a bandit, each round reading pi_e at its own position."""
    log = inputs.log
    pi_e = inputs.action_dist[:, log.position].T  # (n, n_actions)
    return LoggedBandit(log.reward, log.action, log.pscore, pi_e, inputs.q_hat)


def prepare(config: OBDConfig, seed: int, root: Path | None = None) -> OBDInputs:
    """Read both logs, simulate BTS and cross-fit the logistic reward model."""
    log = read_obd("random", config.campaign, root)
    clicks = read_obd("bts", config.campaign, root).reward
    truth = float(clicks.mean())
    half_width = float(1.96 * clicks.std() / np.sqrt(len(clicks)))
    n_actions, len_list = len(log.action_context), int(log.position.max()) + 1
    dist = bts_action_dist(config.campaign, n_actions, len_list, config.n_sim,
                           config.policy_seed)
    est = config.estimators
    q_hat = cross_fit(RewardFeatures(context=log.context, action_context=log.action_context),
                      log.action, log.reward, n_actions=n_actions, kind="logistic", l2=est.l2,
                      folds=fold_ids(len(log.action), est.n_folds, seed), groups=log.position)
    return OBDInputs(log, dist, q_hat, truth, half_width)


def evaluate(inputs: OBDInputs, config: OBDConfig, seed: int) -> list[dict]:
    """One row per estimator: estimate, interval, truth, relative error, obp reference."""
    data = bandit_of(inputs)
    est = config.estimators
    reference = OBP_REFERENCE.get(config.campaign, {})
    intervals = bootstrap_cis(make_estimators(est), data, est.n_boot, est.alpha, seed)
    rows = []
    for name, (value, low, high) in intervals.items():
        same_setup = est.clip is None or name == "dm"
        rows.append({"estimator": name, "estimate": value, "ci_low": low, "ci_high": high,
                     "truth": inputs.truth,
                     "relative_error": (value - inputs.truth) / inputs.truth,
                     "obp_reference": reference.get(name) if same_setup else None})
    return rows


def obp_same_inputs(inputs: OBDInputs, config: OBDConfig) -> dict[str, float]:
    """obp's own estimators on exactly our inputs (action distribution and q_hat).

    obp 0.4.1 has no weight clipping, so with `clip` set only DM and switch-DR are compared.
    """
    obp_package()
    from obp.ope import (
        DirectMethod,
        DoublyRobust,
        InverseProbabilityWeighting,
        SelfNormalizedInverseProbabilityWeighting,
        SwitchDoublyRobust,
    )

    log = inputs.log
    n, len_list = len(log.action), inputs.action_dist.shape[1]
    action_dist = np.broadcast_to(inputs.action_dist, (n, *inputs.action_dist.shape))
    q_hat = np.repeat(inputs.q_hat[:, :, None], len_list, axis=2)
    args = dict(reward=log.reward, action=log.action, position=log.position,
                pscore=log.pscore, action_dist=np.ascontiguousarray(action_dist),
                estimated_rewards_by_reg_model=q_hat)
    estimators = {"ips": InverseProbabilityWeighting(),
                  "snips": SelfNormalizedInverseProbabilityWeighting(),
                  "dm": DirectMethod(), "dr": DoublyRobust(),
                  "switch-dr": SwitchDoublyRobust(tau=config.estimators.switch_tau)}
    if config.estimators.clip is not None:
        estimators = {k: v for k, v in estimators.items() if k in ("dm", "switch-dr")}
    return {name: float(e.estimate_policy_value(**args)) for name, e in estimators.items()}
