"""An exponential moving average of a network's weights (Polyak averaging of iterates).

The greedy policy of a DQN run swings from one evaluation to the next (on the demo world
between about 7 and 21 return per session) because each gradient step moves the argmax of
nearly tied Q-values. Averaging the online weights over the last ~1/(1 - decay) steps
(Polyak and Juditsky 1992; the "EMA" of many deep-learning recipes) gives a policy whose
quality depends much less on where training happened to stop:

    avg <- decay * avg + (1 - decay) * online       after every gradient step

The average only serves: acting while training and the TD targets keep the online and
target networks, so learning itself is unchanged.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class WeightAverage:
    """A frozen copy of `online` whose weights follow an exponential moving average."""

    def __init__(self, online: nn.Module, decay: float):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.module = copy.deepcopy(online).requires_grad_(False)

    def update(self, online: nn.Module) -> None:
        """Move every averaged tensor (buffers included) toward `online`'s."""
        with torch.no_grad():
            for avg, new in zip(self.module.state_dict().values(),
                                online.state_dict().values(), strict=True):
                if avg.is_floating_point():
                    avg.lerp_(new, 1.0 - self.decay)
                else:
                    avg.copy_(new)
