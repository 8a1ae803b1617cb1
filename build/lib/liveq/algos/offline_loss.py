"""Loss terms for learning a Q-function from logged interactions, without a simulator.

Both work on Q-values (or logits) of a *candidate set* per row, `(batch, n_candidates)`,
with a boolean `mask` of the valid candidates and the column of the logged action:

    cql_penalty      = mean_rows( logsumexp_{a valid} Q(s, a) - Q(s, a_logged) )
    bc_cross_entropy = mean_rows( -log softmax_{a valid}(logits)[a_logged] )

The conservative penalty (CQL(H), Kumar et al. 2020) pushes down the Q-values of actions
the log never took while pushing up the logged one, so the greedy policy stays near the
data. Over the same candidate set it equals the behaviour-cloning cross-entropy of the Q
values read as logits (the two functions are tested against each other); they are kept
apart because they play different roles: a regulariser of the TD loss, and a whole
objective. The TD target is `liveq.algos.dqn.td_target`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from liveq.nets.q_networks import masked_q


def _taken(values: torch.Tensor, mask: torch.Tensor | None,
           taken_index: torch.Tensor) -> torch.Tensor:
    """`values[i, taken_index[i]]` (batch,); the taken candidate must be a valid one."""
    taken_index = taken_index.long().unsqueeze(1)  # (batch, 1)
    if mask is not None and not bool(mask.gather(1, taken_index).all()):
        raise ValueError("the logged action is masked out in some row of the candidate set")
    return values.gather(1, taken_index).squeeze(1)


def cql_penalty(q_candidates: torch.Tensor, mask: torch.Tensor | None,
                taken_index: torch.Tensor) -> torch.Tensor:
    """Mean over rows of `logsumexp(Q over valid candidates) - Q(logged action)`, a scalar.

    `q_candidates` (batch, n_candidates), `mask` (batch, n_candidates) bool or None (all
    valid), `taken_index` (batch,) the column of the logged action. Always >= 0.
    """
    soft_max = torch.logsumexp(masked_q(q_candidates, mask), dim=1)  # (batch,)
    return (soft_max - _taken(q_candidates, mask, taken_index)).mean()


def bc_cross_entropy(logits: torch.Tensor, mask: torch.Tensor | None,
                     taken_index: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of the logged action under a softmax over the valid candidates."""
    _taken(logits, mask, taken_index)  # checks the logged action is valid
    return F.cross_entropy(masked_q(logits, mask), taken_index.long())
