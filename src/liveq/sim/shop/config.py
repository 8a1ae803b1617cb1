"""Configuration of the e-commerce simulator (`liveq/Ecommerce-v0`).

Every number the shoppers' behaviour depends on is a field here with its reason, so a
reader sees which mechanism each one drives. `validate()` names the field it refuses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from liveq.core.config import require
from liveq.sim.config import require_finite


@dataclass(kw_only=True)
class ShopRewards:
    """Reward = weighted sum of the funnel events of one step."""

    purchase_value: float = 1.0
    """Reward per unit of price paid (the shop's revenue is the target)."""
    click: float = 0.0
    """Reward per product page opened (a proxy some shops optimise instead)."""
    cart: float = 0.0
    """Reward per add-to-cart."""


@dataclass(kw_only=True)
class EcommerceConfig:
    """Sizes and behaviour of the simulated shop and its shoppers."""

    n_products: int = 200
    """Products in the catalogue at any time (retired ones are replaced by new ones)."""
    n_categories: int = 8
    """Product categories; shoppers' hidden tastes are over categories."""
    n_candidates: int = 10
    """Products retrieved per step, from which the agent recommends one."""
    max_session_steps: int = 30
    """Recommendations per session before it is truncated."""
    price_log_mean: float = 3.0
    """Mean log price (about 20 currency units)."""
    price_log_sd: float = 0.8
    """Spread of log prices: a few products cost much more than most."""
    quality_sd: float = 1.0
    """Spread of hidden product quality (logit units)."""
    rating_noise: float = 0.7
    """Noise of the shown rating around the hidden quality (ratings are imperfect)."""
    stock_mean: float = 6.0
    """Mean units in stock of a new product (Poisson, at least 1)."""
    restock_prob: float = 0.02
    """Chance per step that a sold-out product is restocked to a fresh Poisson draw."""
    new_item_rate: float = 0.01
    """Chance per step that a product is retired and a new one (no history) takes its slot."""
    budget_log_mean: float = 4.5
    """Mean log session budget of a shopper (about 90 units)."""
    budget_log_sd: float = 0.5
    """Spread of shoppers' log budgets."""
    taste_sd: float = 1.5
    """Spread of shoppers' hidden category tastes (logit units)."""
    click_bias: float = -1.5
    """Click logit of an average product for an average shopper."""
    quality_attract: float = 0.3
    """Click logit per unit of hidden quality: quality shows only weakly before a click."""
    price_attract: float = 0.4
    """Click logit per unit of log price above the mean: expensive items look appealing."""
    cart_bias: float = 0.5
    """Add-to-cart logit after a click for an average product."""
    cart_quality: float = 1.0
    """Cart logit per unit of quality: the product page reveals quality."""
    price_sensitivity: float = 3.0
    """Cart logit lost per unit of price / remaining budget."""
    purchase_prob: float = 0.7
    """Chance a carted product is bought (the rest are abandoned carts)."""
    fatigue_weight: float = 0.8
    """Click logit lost per unit of recent exposure to the product's category."""
    fatigue_decay: float = 0.7
    """Fraction of category exposure kept from one step to the next."""
    satiation_weight: float = 2.0
    """Click logit lost per recent purchase in the category (you just bought one)."""
    satiation_decay: float = 0.85
    """Fraction of satiation kept per step: it wears off, so repeat purchases come back."""
    patience: float = 12.0
    """Starting patience of a shopper; the session ends when it reaches 0."""
    ignore_cost: float = 1.0
    """Patience lost per recommendation not clicked."""
    click_cost: float = 0.3
    """Patience lost per click (browsing also tires)."""
    regret_weight: float = 3.0
    """Patience lost per unit of quality below 0 of a bought product (a bad buy sours the
    visit), gained per unit above 0 (a good buy makes shoppers browse on)."""
    rewards: ShopRewards = field(default_factory=ShopRewards)
    """Reward weights of the funnel events."""
    invalid_action: Literal["raise", "empty"] = "raise"
    """What a sold-out or out-of-range recommendation does: raise `InvalidActionError`, or
    show nothing that step."""

    def validate(self) -> None:
        require_finite(self)
        for name in ("n_products", "n_categories", "n_candidates", "max_session_steps"):
            require(getattr(self, name) >= 1,
                    f"{name} must be at least 1, got {getattr(self, name)}")
        require(self.n_candidates <= self.n_products,
                f"n_candidates ({self.n_candidates}) cannot exceed n_products "
                f"({self.n_products})")
        for name in ("restock_prob", "new_item_rate", "purchase_prob"):
            value = getattr(self, name)
            require(0.0 <= value <= 1.0, f"{name} must be in [0, 1], got {value}")
        for name in ("fatigue_decay", "satiation_decay"):
            value = getattr(self, name)
            require(0.0 <= value < 1.0, f"{name} must be in [0, 1), got {value}")
        for name in ("stock_mean", "patience"):
            require(getattr(self, name) > 0,
                    f"{name} must be positive, got {getattr(self, name)}")
        for name in ("price_log_sd", "quality_sd", "rating_noise", "budget_log_sd", "taste_sd",
                     "price_sensitivity", "fatigue_weight", "satiation_weight", "ignore_cost",
                     "click_cost", "regret_weight"):
            require(getattr(self, name) >= 0,
                    f"{name} must be non-negative, got {getattr(self, name)}")
        require(self.invalid_action in ("raise", "empty"),
                f"invalid_action must be 'raise' or 'empty', got {self.invalid_action!r}")
