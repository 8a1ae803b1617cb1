"""Steps/s of the scenario envs beside LiveStream's in `liveq bench`.

Each scenario's vector env is stepped with uniformly random allowed actions (the mask is
the observation's tail) at the same batch sizes as the LiveStream simulator, so the
figures compare like with like; the mask-respecting draw is part of the timed loop, as a
policy's choice would be.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np

from liveq.sim.adplacement import AdPlacementVectorEnv

FULL_CASES = ((1, 2_000), (1_000, 300), (100_000, 10))  # (batch, steps per repeat)
QUICK_CASES = ((1, 50), (100, 20), (2_000, 5))


def _ads_rate(batch: int, steps: int, repeats: int) -> list[float]:
    env = AdPlacementVectorEnv(batch)
    obs, _ = env.reset(seed=0)
    width, rng = env.config.n_campaigns + 1, np.random.default_rng(0)
    rates = []
    for _ in range(repeats + 1):  # the first round warms up
        start = time.perf_counter()
        for _ in range(steps):
            scores = np.where(obs[:, -width:] > 0.5, rng.random((batch, width)), -1.0)
            obs = env.step(scores.argmax(axis=1))[0]
        rates.append(batch * steps / (time.perf_counter() - start))
    return rates[1:]


def bench_scenarios(quick: bool, repeats: int, say) -> dict[str, Any]:
    """Median steps/s of `AdPlacementVectorEnv` at each batch size."""
    out = []
    for batch, steps in QUICK_CASES if quick else FULL_CASES:
        rates = _ads_rate(batch, steps, repeats)
        median = statistics.median(rates)
        out.append({"batch": batch, "steps": steps, "steps_per_s": median, "repeats": rates})
        say(f"  AdPlacementVectorEnv batch {batch:>7,}  {median:>12,.0f}")
    return {"AdPlacement-v0": out}
