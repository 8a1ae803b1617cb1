"""Ad-placement baselines for `liveq/AdPlacement-v0`: greedy eCPM, even pacing and a
budget-aware one-step policy.

All three read only the observation. Their predicted CTR is the population model a
practitioner would fit from logs: the logistic of `ctr_base + ctr_relevance * relevance
+ prime_time_gain * prime(time of day)` with the world's population coefficients; it does
not know a campaign's hidden creative quality.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from liveq.policies.base import Action, action_mask, one_hot_probabilities
from liveq.sim.ads_config import AdPlacementConfig
from liveq.sim.ads_core import CAMPAIGN_COLUMNS, time_column


class AdPolicy:
    """Deterministic: the allowed action with the highest `scores`; "no ad" scores 0."""

    slate_size = 1

    def __init__(self, env: gym.vector.VectorEnv):
        cfg = getattr(env.unwrapped, "config", None)
        if not isinstance(cfg, AdPlacementConfig):
            raise ValueError("ad baselines need a liveq/AdPlacement env")
        self.cfg = cfg
        self.time_col = time_column(cfg)

    def allowed(self, obs, mask=None) -> np.ndarray:
        return action_mask(obs, mask, self.cfg.n_campaigns + 1)

    def campaigns(self, obs) -> np.ndarray:
        """`(n, n_campaigns, 4)`: budget share left, pacing, bid / bid_mean, relevance."""
        rows = np.asarray(obs["candidates"], dtype=np.float64)
        return rows[:, :self.cfg.n_campaigns, :CAMPAIGN_COLUMNS]

    def elapsed(self, obs) -> np.ndarray:
        return np.asarray(obs["viewer"], dtype=np.float64)[:, self.time_col]

    def expected_revenue(self, obs) -> np.ndarray:
        """`(n, n_campaigns)` bid x predicted CTR (the eCPC-weighted eCPM per impression)."""
        cfg, camp = self.cfg, self.campaigns(obs)
        prime = cfg.prime_time_gain * np.clip(3.0 * self.elapsed(obs) - 1.0, 0.0, 1.0)
        logit = cfg.ctr_base + cfg.ctr_relevance * camp[:, :, 3] + prime[:, None]
        return camp[:, :, 2] * cfg.bid_mean / (1.0 + np.exp(-logit))

    def campaign_scores(self, obs) -> np.ndarray:
        return self.expected_revenue(obs)

    def scores(self, obs, mask=None) -> np.ndarray:
        s = np.concatenate([self.campaign_scores(obs), np.zeros((len(obs["mask"]), 1))], axis=1)
        return np.where(self.allowed(obs, mask), s, -np.inf)

    def act(self, obs, mask=None) -> Action:
        actions = self.scores(obs, mask).argmax(axis=1).astype(np.int64)
        return Action(actions, np.ones(len(actions)))

    def probabilities(self, obs, mask=None) -> np.ndarray:
        return one_hot_probabilities(self.act(obs, mask).actions, self.allowed(obs, mask))

    def slate_probability(self, obs, slates, mask=None) -> np.ndarray:
        chosen = self.act(obs, mask).actions
        return (np.asarray(slates).reshape(len(chosen), -1)[:, 0] == chosen).astype(float)


class GreedyEcpmPolicy(AdPolicy):
    """Always shows the allowed ad with the highest bid x predicted CTR (if any)."""

    def campaign_scores(self, obs) -> np.ndarray:
        return self.expected_revenue(obs) + 1e-6  # any eligible ad beats no ad


class EvenPacingPolicy(AdPolicy):
    """Greedy eCPM among campaigns not ahead of an even spend schedule (spent share at
    most the elapsed share of the day); shows no ad when every one is ahead."""

    def campaign_scores(self, obs) -> np.ndarray:
        on_pace = self.campaigns(obs)[:, :, 1] <= 0.0
        return np.where(on_pace, self.expected_revenue(obs) + 1e-6, -1.0)


class BudgetAwarePolicy(AdPolicy):
    """One-step value with a budget shadow price: expected revenue discounted by how far
    a campaign's budget share left falls short of the day left, minus the expected cost of
    the fatigue this ad adds (the chance it makes the viewer leave times the value of a
    mean stay's minutes). Shows no ad when nothing beats that cost."""

    def campaign_scores(self, obs) -> np.ndarray:
        cfg, camp = self.cfg, self.campaigns(obs)
        day_left = np.maximum(1.0 - self.elapsed(obs), 1e-6)[:, None]
        scarcity = np.clip(camp[:, :, 0] / day_left, 0.0, 1.0)
        fatigue_cost = cfg.leave_per_ad * cfg.minute_value * cfg.mean_session_minutes
        return self.expected_revenue(obs) * scarcity - fatigue_cost


AD_BASELINES = {
    "greedy_ecpm": lambda env, seed: GreedyEcpmPolicy(env),
    "even_pacing": lambda env, seed: EvenPacingPolicy(env),
    "budget_aware": lambda env, seed: BudgetAwarePolicy(env),
}
