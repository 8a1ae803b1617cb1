"""Replay that also remembers which rank of the shown slate the viewer opened.

Slate learners (SlateQ) need more than `(s, A, r, s')`: they fit a choice model to which
item was consumed and update that item's long-term value. Slate envs report it in the
step's info as `clicked_rank` (`(n_envs,)` int, the rank of the slate opened, -1 for
nothing; `liveq/LiveStream-v0` does). `ClickCodec` wraps any dict-observation codec and
stores that rank as one more field; because the replay writer encodes every next
observation with the infos of the step that led to it, a transition's
`next_obs["clicked_rank"]` is its own click. Observations encoded without a step (after
a reset) and envs that report no clicks store -1.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from liveq.buffers.replay import Fields, ObsCodec

CLICK_FIELD = "clicked_rank"


class ClickCodec:
    """`inner`'s fields plus `clicked_rank` (int64, -1 = nothing opened); `decode` returns
    the inner observation dict with a `clicked_rank` entry `(batch,)`."""

    def __init__(self, inner: ObsCodec):
        if CLICK_FIELD in inner.fields:
            raise ValueError(f"the wrapped codec already stores '{CLICK_FIELD}'")
        self.inner = inner
        self.fields: Fields = {**inner.fields, CLICK_FIELD: ((), np.dtype(np.int64))}

    def encode(self, obs: dict[str, np.ndarray], infos: dict[str, Any] | None) -> dict:
        stored = self.inner.encode(obs, infos)
        n_envs = len(next(iter(stored.values())))
        clicks = (infos or {}).get(CLICK_FIELD)
        stored[CLICK_FIELD] = (np.full(n_envs, -1, np.int64) if clicks is None
                               else np.asarray(clicks, dtype=np.int64).reshape(n_envs))
        return stored

    def decode(self, stored: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        obs = self.inner.decode({k: v for k, v in stored.items() if k != CLICK_FIELD})
        return {**obs, CLICK_FIELD: stored[CLICK_FIELD]}

    def nbytes(self) -> int:
        return int(getattr(self.inner, "nbytes", lambda: 0)())

    def state_dict(self) -> dict[str, Any]:
        return self.inner.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.inner.load_state_dict(state)
