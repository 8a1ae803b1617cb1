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
        # The averaged tensors, split by kind once: `update` runs after every gradient step,
        # and walking the module tree for each state_dict costs more than the arithmetic.
        averaged = list(self.module.state_dict().values())
        self._floating = [t.is_floating_point() for t in averaged]
        self._lerped = [t for t, f in zip(averaged, self._floating, strict=True) if f]
        self._copied = [t for t, f in zip(averaged, self._floating, strict=True) if not f]
        self._source: tuple[nn.Module, list[torch.Tensor], list[torch.Tensor]] | None = None

    def update(self, online: nn.Module) -> None:
        """Move every averaged tensor (buffers included) toward `online`'s: one fused lerp
        over all floating tensors (bit for bit the per-tensor `lerp_`), a copy of the rest."""
        lerped, copied = self._online_tensors(online)
        with torch.no_grad():
            torch._foreach_lerp_(self._lerped, lerped, 1.0 - self.decay)
            for avg, value in zip(self._copied, copied, strict=True):
                avg.copy_(value)

    def _online_tensors(self, online: nn.Module) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """`online`'s floating and other state tensors, split as the averaged ones are.

        Cached per module: its state tensors share storage with the parameters and buffers,
        which training updates in place, and walking the module tree for a fresh
        `state_dict` after every gradient step costs more than the lerp itself."""
        if self._source is not None and self._source[0] is online:
            return self._source[1], self._source[2]
        new = list(online.state_dict().values())
        if len(new) != len(self._floating):
            raise ValueError(f"averaging {len(self._floating)} tensors, the network has "
                             f"{len(new)}")
        lerped = [t for t, f in zip(new, self._floating, strict=True) if f]
        copied = [t for t, f in zip(new, self._floating, strict=True) if not f]
        self._source = (online, lerped, copied)
        return lerped, copied
