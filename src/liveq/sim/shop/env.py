"""Gymnasium envs over the shop core: `liveq/Ecommerce-v0` and its batched vector form."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from liveq.core.errors import InvalidActionError
from liveq.sim.batched import (
    SEED_BOUND,
    CoreVectorEnv,
    SessionMetrics,
    check_config_kwargs,
    config_from,
)
from liveq.sim.shop.config import EcommerceConfig
from liveq.sim.shop.core import FEATURE_CLIP, ShopCore, candidate_width, viewer_width

ECOMMERCE_ID = "liveq/Ecommerce-v0"
SHOP_METRICS = SessionMetrics(
    sums=(("impressions", "shown"), ("clicks", "click"), ("carts", "cart"),
          ("purchases", "purchase"), ("revenue", "purchase_value")),
    ratios=(("ctr", "clicks", "impressions"), ("cart_rate", "carts", "clicks"),
            ("purchase_rate", "purchases", "clicks")),
    order=("return", "revenue", "purchases", "clicks", "ctr", "cart_rate", "purchase_rate",
           "length"))
"""The funnel per shopper session: products shown, clicks, carts, purchases and revenue
(price paid), CTR (clicks per product shown) and carts and purchases per click."""


def make_config(config: EcommerceConfig | dict | None, overrides: dict,
                path: str = "") -> EcommerceConfig:
    """A validated config from an object or mapping plus keyword overrides."""
    return config_from(EcommerceConfig, config, overrides, path)


def check_kwargs(kwargs: dict[str, Any], path: str) -> None:
    """Validate the env's keyword arguments before building it (a run config's env.kwargs)."""
    check_config_kwargs(EcommerceConfig, kwargs, path)


def spaces_for(cfg: EcommerceConfig) -> tuple[spaces.Dict, spaces.Discrete]:
    k, b = cfg.n_candidates, FEATURE_CLIP
    obs = spaces.Dict({
        "viewer": spaces.Box(-b, b, (viewer_width(cfg),), np.float32),
        "candidates": spaces.Box(-b, b, (k, candidate_width(cfg)), np.float32),
        "mask": spaces.MultiBinary(k),
    })
    return obs, spaces.Discrete(k)


class EcommerceEnv(gym.Env):
    """
    ## Description

    A shop, one shopper session at a time. Each step the agent recommends one product from
    a table of `n_candidates`; the shopper, with hidden category tastes and a hidden
    budget, may click it, add it to the cart (the page shows its quality; too large a share
    of the remaining budget puts them off) and buy it. Other mechanisms: category fatigue
    (showing one category again lowers clicks), satiation (a purchase lowers interest in
    its category for a while, then repeat purchases come back), shared stock that sells
    out and restocks, new products arriving without history (cold start), and patience:
    ignored recommendations cost patience and a bought product changes it by its quality
    (a bad buy ends the visit sooner, a good one keeps the shopper browsing).

    ## Action Space

    `Discrete(n_candidates)`: the product to recommend (an integer). A sold-out (masked) or
    out-of-range one raises `InvalidActionError` unless `invalid_action="empty"`.

    ## Observation Space

    `Dict` in LiveStream's layout (so item-conditioned agents run unchanged):
    * `viewer` `Box(float32, (6 + 2 * n_categories,))`: log(1 + budget left), session
      progress, clicked / carted / bought last step, log(1 + purchases), recent exposure per
      category, purchases per category this session.
    * `candidates` `Box(float32, (n_candidates, n_categories + 9))`: category one-hot,
      log price (centred), price / budget left, shown rating (noisy quality), log(1 +
      stock), estimated CTR, log(1 + units sold), new product, the shopper's exposure to and
      purchases in its category.
    * `mask` `MultiBinary(n_candidates)`: 1 where the product is in stock.

    ## Rewards

    `rewards.purchase_value * price paid + rewards.click * clicked + rewards.cart * carted`.

    ## Starting State

    `reset(seed=s)` builds a new shop from `s` and the first shopper; `reset()` without a
    seed starts the next shopper in the same shop.

    ## Episode End

    Terminated when the shopper's patience reaches 0; truncated after `max_session_steps`.

    ## Arguments

    `gymnasium.make("liveq/Ecommerce-v0", **fields)` with any `EcommerceConfig` field or
    `config=`. `info`: `product_id` (candidate slot's catalogue index), `shown` (a product
    was shown), `item_id` (the product's id for its life), `click`, `cart`, `purchase`,
    `purchase_value`, `shopper_id`.
    """

    metadata = {"render_modes": []}
    check_kwargs = staticmethod(check_kwargs)

    def __init__(self, config: EcommerceConfig | dict | None = None, **overrides: Any):
        self.config = make_config(config, overrides)
        self.observation_space, self.action_space = spaces_for(self.config)
        self.core = ShopCore(self.config, 1)
        self._built = self._ended = False

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None or not self._built:
            obs = self.core.reset(int(self.np_random.integers(SEED_BOUND)))
            self._built = True
        else:
            self.core.needs_reset[:] = True
            obs = self.core.step(np.zeros(1, dtype=np.int64))[0]
        self._ended = False
        return _first(obs), {}

    def step(self, action):
        if not self._built or self._ended:
            raise InvalidActionError("call reset() before step() (new env or ended session)")
        arr = np.asarray(action)
        if arr.shape != () or not np.issubdtype(arr.dtype, np.integer):
            raise InvalidActionError(f"action must be an integer, got {action!r}")
        obs, reward, term, trunc, info = self.core.step(arr[None])
        self._ended = bool(term[0] or trunc[0])
        return _first(obs), float(reward[0]), bool(term[0]), bool(trunc[0]), _first(info)


def _first(batch: dict[str, np.ndarray]) -> dict[str, Any]:
    return {key: value[0] for key, value in batch.items()}


class EcommerceVectorEnv(CoreVectorEnv):
    """
    `num_envs` concurrent shopper sessions on one shop (shared catalogue and stock),
    stepped by the numpy core. Spaces, rewards and episode end as `EcommerceEnv`, batched
    along a first axis. `reset(seed=s)` builds the shop from a seed drawn from the env's
    generator. Autoreset is Gymnasium's `NEXT_STEP`: a session that ended restarts on the
    next `step` with a new shopper, ignoring its action and paying 0.
    """

    config_class = EcommerceConfig
    core_class = ShopCore
    session_metrics = SHOP_METRICS
    spaces = staticmethod(spaces_for)
    check_kwargs = staticmethod(check_kwargs)


def register_ecommerce() -> None:
    """Register `liveq/Ecommerce-v0` with its batched vector entry point (idempotent)."""
    if ECOMMERCE_ID not in gym.registry:
        gym.register(ECOMMERCE_ID, entry_point="liveq.sim.shop.env:EcommerceEnv",
                     vector_entry_point="liveq.sim.shop.env:EcommerceVectorEnv")
