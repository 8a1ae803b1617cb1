"""`liveq data synth --config shop_small --format generic`: synthetic e-commerce logs.

A run config whose `env.id` is `liveq/Ecommerce-v0` makes `data synth` simulate the shop
(`liveq.data.shop_logs`) instead of the live-streaming platform: `--sessions` concurrent
shoppers, one recommendation a minute for `--days`, the behaviour `--policy` (popular or
random) with `--epsilon` exploration.
"""

from __future__ import annotations

import argparse
import time

from liveq.core.config import ConfigError, from_dict, load_yaml
from liveq.data.generic import write_generic
from liveq.data.shop_logs import STEP_MINUTES, simulate_shop_rows
from liveq.sim.shop import ECOMMERCE_ID, EcommerceConfig


def shop_config(path: str) -> EcommerceConfig | None:
    """The shop settings of a run config for `liveq/Ecommerce-v0`, else None."""
    env = load_yaml(path).get("env")
    if not isinstance(env, dict) or env.get("id") != ECOMMERCE_ID:
        return None
    return from_dict(EcommerceConfig, env.get("kwargs") or {}, "env.kwargs")


def shop_synth(args: argparse.Namespace, cfg: EcommerceConfig) -> int:
    """Simulate and write the shop log, then print a one-line summary."""
    if args.format != "generic":
        raise ConfigError(f"--format: shop logs are written in the generic format, not "
                          f"{args.format!r}")
    if args.days <= 0:
        raise ConfigError(f"--days must be positive, got {args.days}")
    began = time.perf_counter()
    steps = max(1, round(args.days * 24 * 60 / STEP_MINUTES))
    raw = simulate_shop_rows(cfg, policy=args.policy, epsilon=args.epsilon,
                             sessions=args.sessions, steps=steps, seed=args.seed)
    schema = write_generic(raw, args.out, STEP_MINUTES)
    print(f"wrote {args.out} (generic, schema {schema}): {raw.height} rows, "
          f"{raw['user'].n_unique()} shoppers, {raw['item'].n_unique()} products, {steps} "
          f"steps of {STEP_MINUTES:g} min, {time.perf_counter() - began:.1f} s")
    return 0
