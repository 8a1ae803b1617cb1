"""The top-K off-policy corrected REINFORCE loss (Chen et al., WSDM 2019), as pure functions.

For logged decisions (s, a) of a behaviour policy beta with the discounted return R that
followed, the softmax policy pi is trained on

    L = - mean_i  w_i * lambda_K(s_i, a_i) * R_i * log pi(a_i | s_i)

    w          = pi(a|s) / beta(a|s)          the importance weight (section 4.2),
                 capped at `cap` and self-normalised over the batch (section 4.4)
    lambda_K   = K (1 - pi(a|s))^(K-1)        the top-K multiplier (section 4.3)

Both factors are constants for the gradient (computed from detached probabilities), as
in the paper's gradient `w lambda_K R grad log pi`. lambda_K comes from the probability
that `a` is among K independent draws of pi, `1 - (1 - pi)^K`, whose gradient is
`lambda_K pi grad log pi`; it is large where pi(a) is small (an item the top-K slate
does not hold yet) and goes to 0 as pi(a) -> 1 (already recommended, no need to push).
`correction` chooses which factors apply: "none" (plain REINFORCE on the log, biased
toward the behaviour's choices), "importance" (w only: the K = 1 estimator), "topk"
(w and lambda_K).

For slates the logged action has one item per rank; each allowed item is one term with
the slate's return (ranks a short candidate list could not fill are left out).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from liveq.nets.q_networks import masked_q

CORRECTIONS = ("none", "importance", "topk")


def topk_multiplier(pi_taken: torch.Tensor, k: int) -> torch.Tensor:
    """`K (1 - pi)^(K-1)`; 1 everywhere for K = 1."""
    return k * (1.0 - pi_taken) ** (k - 1)


def importance_weights(pi_taken: torch.Tensor, beta_taken: torch.Tensor, cap: float,
                       normalise: bool, valid: torch.Tensor | None = None) -> torch.Tensor:
    """`pi / beta`, capped at `cap` (0 = no cap) and, with `normalise`, divided by its mean
    over the `valid` entries (all when None), so the batch's weights average 1."""
    weights = pi_taken / beta_taken.clamp(min=1e-12)
    if cap > 0:
        weights = weights.clamp(max=cap)
    if normalise:
        keep = torch.ones_like(weights, dtype=torch.bool) if valid is None else valid
        mean = weights[keep].mean() if bool(keep.any()) else weights.new_tensor(1.0)
        weights = weights / mean.clamp(min=1e-12)
    return weights


def policy_log_probs(logits: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """log softmax of `logits` (batch, n) over the allowed entries of `mask`; masked
    entries get log-probability about -1e9 (probability exactly 0 in float32)."""
    return F.log_softmax(masked_q(logits, mask), dim=1)


def corrected_reinforce_loss(log_probs: torch.Tensor, actions: torch.Tensor,
                             returns: torch.Tensor, beta_taken: torch.Tensor | None, *,
                             correction: str, top_k: int, cap: float, normalise: bool,
                             mask: torch.Tensor | None = None,
                             ) -> tuple[torch.Tensor, dict[str, float]]:
    """The corrected REINFORCE loss and its statistics.

    `log_probs` (batch, n) from `policy_log_probs`; `actions` (batch,) or (batch, L) the
    logged items; `returns` (batch,); `beta_taken` the behaviour's probability of each
    logged item, the shape of `actions` (unused with correction "none").
    """
    slates = actions.long().reshape(len(actions), -1)  # (batch, L)
    valid = torch.ones_like(slates, dtype=torch.bool)
    if mask is not None:
        valid = mask.gather(1, slates)
    logp = log_probs.gather(1, slates)  # (batch, L)
    pi_taken = logp.detach().exp()
    factor = torch.ones_like(pi_taken)
    stats: dict[str, float] = {}
    if correction != "none":
        if beta_taken is None:
            raise ValueError(f"correction '{correction}' needs the behaviour's probabilities")
        beta = beta_taken.reshape(slates.shape).to(pi_taken.dtype)
        weights = importance_weights(pi_taken, beta, cap, normalise, valid)
        factor = factor * weights
        stats["weight_max"] = float(weights[valid].max()) if bool(valid.any()) else 0.0
    if correction == "topk":
        factor = factor * topk_multiplier(pi_taken, top_k)
    terms = factor * returns.unsqueeze(1) * logp * valid
    loss = -terms.sum() / valid.sum().clamp(min=1)
    stats["policy_loss"] = loss.item()
    stats["pi_taken"] = float(pi_taken[valid].mean()) if bool(valid.any()) else 0.0
    return loss, stats


def entropy(log_probs: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean entropy of the policy rows (masked entries contribute 0)."""
    probs = log_probs.exp()
    if mask is not None:
        probs = probs * mask
    return -(probs * log_probs).sum(dim=1).mean()
