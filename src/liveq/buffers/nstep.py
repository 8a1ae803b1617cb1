"""n-step returns (Sutton 1988; Hessel et al. 2018) over the per-env sequences in replay.

From a stored transition at step t, the window holds the same env's next `n` steps:

    G = r_t + g r_{t+1} + ... + g^{k} r_{t+k}
    y = G + g^{k+1} max_a Q(s_{t+k+1}, a)        bootstrap from the window's last next_obs

where k + 1 <= n is the window's length. The window ends early at the first step whose
episode ended: at a termination nothing is bootstrapped (the discount is 0); at a
truncation (a time limit) the value of that step's next observation still is. The
vector env's NEXT_STEP autoreset row that follows an ended step is therefore never inside
a window. At the newest end of the buffer a window also ends where the env's recorded
steps end (a shorter, still correct, k-step target), so every stored transition can be
sampled as soon as it is written.

`n_step_returns` is the pure arithmetic; `ReplayBuffer` (n_step > 1) finds the windows.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class NStepReturns(NamedTuple):
    """Per window: the discounted reward sum, the factor on the bootstrap value and which
    step of the window holds the bootstrap observation."""

    returns: np.ndarray  # (batch,) float32
    discounts: np.ndarray  # (batch,) float32: g^(last + 1), or 0 after a termination
    last: np.ndarray  # (batch,) int64: index in the window of the step to bootstrap from


def n_step_returns(rewards: np.ndarray, terminated: np.ndarray, ended: np.ndarray,
                   gamma: float) -> NStepReturns:
    """n-step returns of windows of `n` consecutive steps of one env each.

    `rewards`, `terminated` and `ended` are (batch, n); `ended[:, j]` is true where the
    window must stop after step j (the episode terminated or was truncated there, or
    step j is the last one recorded). Steps after the first ended step are ignored.
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    batch, n = rewards.shape
    stops = np.asarray(ended, dtype=bool).copy()
    stops[:, -1] = True
    last = stops.argmax(axis=1)  # first stop in each window
    inside = np.arange(n)[None, :] <= last[:, None]  # (batch, n)
    powers = gamma ** np.arange(n, dtype=np.float64)  # g^0 .. g^(n-1)
    returns = (rewards * powers * inside).sum(axis=1)
    cut = np.asarray(terminated, dtype=bool)[np.arange(batch), last]
    discounts = np.where(cut, 0.0, gamma ** (last + 1.0))
    return NStepReturns(returns.astype(np.float32), discounts.astype(np.float32),
                        last.astype(np.int64))
