"""Synthetic e-commerce logs from `liveq/Ecommerce-v0` in liveq's generic log format.

A behaviour policy (a shop baseline, with uniform exploration `epsilon`) recommends to
`sessions` concurrent shoppers for `steps` steps. Every click is one row: `user` the
shopper, `item` the product (its lifetime id), `start`/`stop` the step and the next,
`watch` 1 (one product page viewed), `value` the price paid if bought, else 0, and
`propensity` the behaviour's probability of having shown that product. `write_shop_log`
writes it with the generic schema beside it, so `liveq eval-offline` and `liveq ope` read
it like any log (`liveq.data.generic.load_generic`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from liveq.core.config import require
from liveq.data.generic import write_generic
from liveq.policies.explore import EpsilonGreedy
from liveq.policies.shop import SHOP_BASELINES
from liveq.sim.shop import EcommerceConfig, EcommerceVectorEnv

STEP_MINUTES = 1.0  # one recommendation a minute


def simulate_shop_rows(config: EcommerceConfig | None = None, *, policy: str = "popular",
                       epsilon: float = 0.1, sessions: int = 256, steps: int = 200,
                       seed: int = 0) -> pl.DataFrame:
    """Rows `user, item, stream, start, stop, watch, value, propensity` (see the module)."""
    require(policy in SHOP_BASELINES, f"policy must be one of {sorted(SHOP_BASELINES)}, "
            f"got {policy!r}")
    require(0.0 <= epsilon <= 1.0, f"epsilon must be in [0, 1], got {epsilon}")
    require(sessions >= 1 and steps >= 1, "sessions and steps must be at least 1")
    env = EcommerceVectorEnv(sessions, config or EcommerceConfig())
    rng = np.random.default_rng(seed)
    behaviour = EpsilonGreedy(SHOP_BASELINES[policy](env, seed), epsilon, rng)
    obs, _ = env.reset(seed=seed)
    parts = []
    for t in range(steps):
        action = behaviour.act(obs)
        obs, _, _, _, info = env.step(action.actions)
        rows = np.flatnonzero(info["click"])
        parts.append(pl.DataFrame({
            "user": info["shopper_id"][rows], "item": info["item_id"][rows],
            "start": np.full(len(rows), t, np.int32), "value": info["purchase_value"][rows],
            "propensity": action.propensities[rows].astype(np.float64)}))
    frame = pl.concat(parts)
    return frame.with_columns(pl.col("item").alias("stream"), (pl.col("start") + 1)
                              .alias("stop"), pl.lit(1.0, pl.Float32).alias("watch"),
                              pl.col("value").cast(pl.Float32))


def write_shop_log(out: str | Path, **kwargs) -> Path:
    """Simulate (`simulate_shop_rows` arguments) and write a generic log to `out` (.csv or
    Parquet); returns the schema YAML's path."""
    return write_generic(simulate_shop_rows(**kwargs), out, STEP_MINUTES)
