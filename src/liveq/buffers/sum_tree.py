"""A sum-tree over a fixed number of non-negative priorities (Schaul et al. 2016, App. B.2.1).

Leaf `i` holds priority `p_i`; every internal node holds the sum of its two children, so
the root is the total and drawing a leaf with probability `p_i / total` is a walk from the
root in `log2(capacity)` steps. Updates and draws are vectorised over a batch of leaves.

Each internal node is recomputed as `left + right` from its children (never adjusted by a
difference), so the whole tree is a pure function of the leaves: two trees with the same
leaves are equal bit for bit, whatever order they were written in, and `load_state_dict`
rebuilds exactly the tree that was saved.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class SumTree:
    """Priorities of `capacity` leaves with O(log n) updates, totals and proportional draws."""

    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError(f"sum-tree capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self.width = 1 << (capacity - 1).bit_length()  # leaves, a power of two
        self.nodes = np.zeros(2 * self.width)  # nodes[1] is the root; leaves at [width, 2 width)

    @property
    def total(self) -> float:
        """Sum of all priorities."""
        return float(self.nodes[1])

    def priorities(self, leaves: np.ndarray | None = None) -> np.ndarray:
        """The priorities of `leaves` (all leaves when None)."""
        own = self.nodes[self.width: self.width + self.capacity]
        return own.copy() if leaves is None else own[np.asarray(leaves)]

    def update(self, leaves: np.ndarray, priorities: np.ndarray) -> None:
        """Set `priorities` (non-negative, finite) at `leaves`; a repeated leaf keeps its last."""
        leaves = np.asarray(leaves, dtype=np.int64)
        priorities = np.asarray(priorities, dtype=np.float64)
        if leaves.size == 0:
            return
        if not (np.isfinite(priorities).all() and (priorities >= 0).all()):
            raise ValueError("priorities must be finite and non-negative")
        if leaves.min() < 0 or leaves.max() >= self.capacity:
            raise IndexError(f"leaf out of range [0, {self.capacity})")
        self.nodes[self.width + leaves] = priorities
        self._recompute_parents(self.width + leaves)

    def _recompute_parents(self, nodes: np.ndarray) -> None:
        nodes = np.unique(nodes // 2)
        while nodes[0] >= 1:
            self.nodes[nodes] = self.nodes[2 * nodes] + self.nodes[2 * nodes + 1]
            nodes = np.unique(nodes // 2)

    def find(self, values: np.ndarray) -> np.ndarray:
        """The leaf whose prefix-sum interval holds each of `values` (in [0, total)).

        Only leaves with a positive priority are returned: where rounding would step into
        an empty subtree the walk takes the other child, so a value at or past the total
        lands on the last positive leaf.
        """
        if self.total <= 0:
            raise ValueError("cannot draw from a sum-tree whose priorities are all 0")
        values = np.array(values, dtype=np.float64)
        node = np.ones(len(values), dtype=np.int64)
        while node[0] < self.width:
            left = 2 * node
            left_sum, right_sum = self.nodes[left], self.nodes[left + 1]
            go_right = ((values >= left_sum) & (right_sum > 0)) | (left_sum <= 0)
            values = np.where(go_right, values - left_sum, values)
            node = left + go_right
        return node - self.width

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """`n` leaves drawn with probability proportional to priority, stratified: the
        total is cut into `n` equal segments and one value is drawn uniformly in each."""
        values = (np.arange(n) + rng.random(n)) * (self.total / n)
        return self.find(values)

    def state_dict(self) -> dict[str, Any]:
        """The leaves; the internal nodes are rebuilt from them bit for bit."""
        return {"capacity": self.capacity, "priorities": self.priorities()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if int(state["capacity"]) != self.capacity:
            raise ValueError(f"sum-tree capacity {self.capacity} does not match saved "
                             f"{state['capacity']}")
        self.nodes[:] = 0.0
        self.nodes[self.width: self.width + self.capacity] = np.asarray(state["priorities"])
        for level_start in _internal_levels(self.width):
            nodes = np.arange(level_start, 2 * level_start)
            self.nodes[nodes] = self.nodes[2 * nodes] + self.nodes[2 * nodes + 1]


def _internal_levels(width: int) -> list[int]:
    """First node of each internal level, deepest first: width/2, width/4, ..., 1."""
    levels, start = [], width // 2
    while start >= 1:
        levels.append(start)
        start //= 2
    return levels
