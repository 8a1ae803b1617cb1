"""The batched numpy core of `liveq/Ecommerce-v0`: one shop, `n` concurrent shoppers.

The catalogue (category, price, hidden quality, shown rating, stock, logged counts) is
shared by all sessions, so what one shopper buys is gone for the others. Each step every
session is shown one product and walks the funnel browse -> click -> cart -> purchase;
`step` returns batched observations, rewards, flags and an info dict of the events.
"""

from __future__ import annotations

import numpy as np

from liveq.core.errors import InvalidActionError
from liveq.sim.shop.config import EcommerceConfig

NEW_ITEM_IMPRESSIONS = 10  # a product shown fewer times than this counts as new
VIEWER_FIXED = 6  # viewer columns before the per-category blocks
CANDIDATE_FIXED = 9  # candidate columns after the category one-hot
FEATURE_CLIP = 50.0
CLICK_HISTORY = 8  # lifetime ids of a session's latest clicked products (for CF models)


def viewer_width(cfg: EcommerceConfig) -> int:
    return VIEWER_FIXED + 2 * cfg.n_categories


def candidate_width(cfg: EcommerceConfig) -> int:
    return cfg.n_categories + CANDIDATE_FIXED


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -30.0, 30.0)))


class ShopCore:
    """`n` shopper sessions on one catalogue; `reset(seed)` builds the shop."""

    def __init__(self, cfg: EcommerceConfig, n: int):
        if n < 1:
            raise InvalidActionError(f"num_envs must be at least 1, got {n}")
        self.cfg, self.n = cfg, n

    # -- the world -------------------------------------------------------------------
    def reset(self, seed: int) -> dict[str, np.ndarray]:
        cfg, n, c = self.cfg, self.n, self.cfg.n_categories
        self.rng = np.random.default_rng(seed)
        p = cfg.n_products
        self.category = np.zeros(p, dtype=np.int64)
        self.price, self.quality, self.rating = np.zeros(p), np.zeros(p), np.zeros(p)
        self.stock = np.zeros(p, dtype=np.int64)
        self.impressions, self.clicks, self.sales = np.zeros(p), np.zeros(p), np.zeros(p)
        self.serial, self.next_serial = np.zeros(p, dtype=np.int64), 0
        self._new_products(np.arange(p))
        self.taste, self.fatigue = np.zeros((n, c)), np.zeros((n, c))
        self.satiation, self.bought = np.zeros((n, c)), np.zeros((n, c))
        self.budget, self.patience, self.steps = np.zeros(n), np.zeros(n), np.zeros(n, np.int64)
        self.last = np.zeros((n, 3))  # clicked, carted, bought last step
        self.shopper = np.zeros(n, dtype=np.int64)
        self.clicked_items = np.full((n, CLICK_HISTORY), -1, dtype=np.int64)
        self.next_shopper = 0
        self._new_shoppers(np.ones(n, dtype=bool))
        self.needs_reset = np.zeros(n, dtype=bool)
        self.candidates = self._retrieve()
        return self.observe()

    def _new_products(self, ids: np.ndarray) -> None:
        cfg, rng, k = self.cfg, self.rng, len(ids)
        self.category[ids] = rng.integers(cfg.n_categories, size=k)
        self.price[ids] = np.exp(rng.normal(cfg.price_log_mean, cfg.price_log_sd, k))
        self.quality[ids] = rng.normal(0.0, cfg.quality_sd, k)
        self.rating[ids] = self.quality[ids] + rng.normal(0.0, cfg.rating_noise, k)
        self.stock[ids] = np.maximum(rng.poisson(cfg.stock_mean, k), 1)
        self.impressions[ids] = self.clicks[ids] = self.sales[ids] = 0.0
        self.serial[ids] = self.next_serial + np.arange(k)  # a product's id for its life
        self.next_serial += k

    def _new_shoppers(self, rows: np.ndarray) -> None:
        cfg, rng, k = self.cfg, self.rng, int(rows.sum())
        self.taste[rows] = rng.normal(0.0, cfg.taste_sd, (k, cfg.n_categories))
        self.budget[rows] = np.exp(rng.normal(cfg.budget_log_mean, cfg.budget_log_sd, k))
        self.patience[rows] = cfg.patience
        for arr in (self.fatigue, self.satiation, self.bought, self.last):
            arr[rows] = 0.0
        self.steps[rows] = 0
        self.clicked_items[rows] = -1
        self.shopper[rows] = self.next_shopper + np.arange(k)
        self.next_shopper += k

    def _retrieve(self) -> np.ndarray:
        """`(n, K)` distinct products per session, in-stock ones first, else at random."""
        keys = self.rng.random((self.n, self.cfg.n_products)) + (self.stock > 0)
        return np.argpartition(-keys, self.cfg.n_candidates - 1,
                               axis=1)[:, :self.cfg.n_candidates]

    def _evolve_catalogue(self) -> None:
        cfg, rng, p = self.cfg, self.rng, self.cfg.n_products
        restock = (self.stock == 0) & (rng.random(p) < cfg.restock_prob)
        self.stock[restock] = np.maximum(rng.poisson(cfg.stock_mean, int(restock.sum())), 1)
        self._new_products(np.flatnonzero(rng.random(p) < cfg.new_item_rate))

    # -- one step --------------------------------------------------------------------
    def mask(self) -> np.ndarray:
        return (self.stock[self.candidates] > 0).astype(np.int8)

    def _chosen(self, actions: np.ndarray) -> np.ndarray:
        """`(n,)` product ids shown, -1 for none (restarting sessions, empty actions)."""
        actions = np.asarray(actions)
        if actions.shape != (self.n,) or not np.issubdtype(actions.dtype, np.integer):
            raise InvalidActionError(f"actions must be {self.n} integers, got {actions!r}")
        k = self.cfg.n_candidates
        inside = (actions >= 0) & (actions < k)
        ids = np.take_along_axis(self.candidates, np.clip(actions, 0, k - 1)[:, None], 1)[:, 0]
        ok = inside & (self.stock[ids] > 0)
        bad = ~ok & ~self.needs_reset
        if bad.any() and self.cfg.invalid_action == "raise":
            row = int(np.flatnonzero(bad)[0])
            raise InvalidActionError(f"session {row}: action {actions[row]} is out of range "
                                     "or sold out (masked)")
        return np.where(ok & ~self.needs_reset, ids, -1)

    def _funnel(self, ids: np.ndarray) -> tuple[np.ndarray, ...]:
        """Click, cart and purchase flags `(n,)` of the shown products (stock decremented)."""
        cfg, rng, rows = self.cfg, self.rng, np.arange(self.n)
        shown = ids >= 0
        pid = np.where(shown, ids, 0)
        cat = self.category[pid]
        logit = (cfg.click_bias + self.taste[rows, cat] + cfg.quality_attract * self.quality[pid]
                 + cfg.price_attract * (np.log(self.price[pid]) - cfg.price_log_mean)
                 - cfg.fatigue_weight * self.fatigue[rows, cat]
                 - cfg.satiation_weight * self.satiation[rows, cat])
        u = rng.random((3, self.n))
        click = shown & (u[0] < _sigmoid(logit))
        share = self.price[pid] / np.maximum(self.budget, 1e-9)
        cart_logit = (cfg.cart_bias + cfg.cart_quality * self.quality[pid]
                      - cfg.price_sensitivity * share)
        cart = click & (share <= 1.0) & (u[1] < _sigmoid(cart_logit))
        want = cart & (u[2] < cfg.purchase_prob)
        buy = want & self._serve_stock(np.where(want, pid, -1))
        return pid, cat, click, cart, buy

    def _serve_stock(self, wanted: np.ndarray) -> np.ndarray:
        """Which of the wanted products (-1: none) are sold: sessions in index order take
        the units left; stock never goes below 0."""
        rows = np.flatnonzero(wanted >= 0)
        order = rows[np.argsort(wanted[rows], kind="stable")]
        pids = wanted[order]
        first = np.searchsorted(pids, pids, side="left")
        rank = np.arange(len(pids)) - first
        sold = np.zeros(self.n, dtype=bool)
        sold[order] = rank < self.stock[pids]
        np.subtract.at(self.stock, wanted[sold], 1)
        return sold

    def step(self, actions: np.ndarray):
        cfg, rows = self.cfg, np.arange(self.n)
        restarting = self.needs_reset.copy()
        ids = self._chosen(actions)
        pid, cat, click, cart, buy = self._funnel(ids)
        shown = ids >= 0
        np.add.at(self.impressions, pid[shown], 1.0)
        np.add.at(self.clicks, pid[click], 1.0)
        np.add.at(self.sales, pid[buy], 1.0)
        value = np.where(buy, self.price[pid], 0.0)
        self.budget -= value
        self.fatigue *= cfg.fatigue_decay
        self.satiation *= cfg.satiation_decay
        self.fatigue[rows[shown], cat[shown]] += 1.0
        self.satiation[rows[buy], cat[buy]] += 1.0
        self.bought[rows[buy], cat[buy]] += 1.0
        self.patience -= np.where(click, cfg.click_cost, cfg.ignore_cost) * ~restarting
        self.patience += np.where(buy, cfg.regret_weight * self.quality[pid], 0.0)
        self.patience = np.minimum(self.patience, 2 * cfg.patience)
        self.last = np.stack([click, cart, buy], axis=1).astype(np.float64)
        self.clicked_items[click] = np.concatenate(
            [self.serial[pid[click]][:, None], self.clicked_items[click, :-1]], axis=1)
        reward = (cfg.rewards.purchase_value * value + cfg.rewards.click * click
                  + cfg.rewards.cart * cart)
        self.steps += ~restarting
        terminated = ~restarting & (self.patience <= 0)
        truncated = ~restarting & ~terminated & (self.steps >= cfg.max_session_steps)
        info = {"product_id": ids, "shown": shown,
                "item_id": np.where(shown, self.serial[pid], -1),
                "click": click, "cart": cart, "purchase": buy,
                "purchase_value": value, "shopper_id": self.shopper.copy()}
        self._new_shoppers(restarting)
        self._evolve_catalogue()
        self.needs_reset = terminated | truncated
        self.candidates = self._retrieve()
        return self.observe(), reward, terminated, truncated, info

    # -- features --------------------------------------------------------------------
    def observe(self) -> dict[str, np.ndarray]:
        cfg = self.cfg
        budget = np.maximum(self.budget, 0.0)
        viewer = np.concatenate([
            np.log1p(budget)[:, None], (self.steps / cfg.max_session_steps)[:, None],
            self.last, np.log1p(self.bought.sum(axis=1))[:, None], self.fatigue, self.bought,
        ], axis=1)
        ids = self.candidates
        cat = self.category[ids]
        onehot = np.eye(cfg.n_categories)[cat]
        price = self.price[ids]
        rows = np.arange(self.n)[:, None]
        cand = np.concatenate([onehot, np.stack([
            np.log(price) - cfg.price_log_mean,
            np.minimum(price / np.maximum(budget, 1.0)[:, None], 10.0),
            self.rating[ids], np.log1p(self.stock[ids]),
            (self.clicks[ids] + 1.0) / (self.impressions[ids] + 5.0),
            np.log1p(self.sales[ids]),
            (self.impressions[ids] < NEW_ITEM_IMPRESSIONS).astype(np.float64),
            self.fatigue[rows, cat], self.bought[rows, cat]], axis=2)], axis=2)
        return {"viewer": np.clip(viewer, -FEATURE_CLIP, FEATURE_CLIP).astype(np.float32),
                "candidates": np.clip(cand, -FEATURE_CLIP, FEATURE_CLIP).astype(np.float32),
                "mask": self.mask()}
