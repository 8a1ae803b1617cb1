"""Session-steps/s of the scenario simulators beside LiveStream's (a `liveq bench` part).

Each registered scenario env is built as its batched vector env (`make_vec_env`) and
stepped with the cheapest valid policy (the first allowed action); the figure is the
median over repeats after a warm-up, as for LiveStream.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np

from liveq.sim.vector import make_vec_env

SCENARIO_ENVS = ("liveq/Ecommerce-v0", "liveq/AdPlacement-v0", "liveq/LiveRoom-v0")
FULL_CASES = ((1, 2000), (1_000, 60), (100_000, 3))  # (batch, vector steps per repeat)
QUICK_CASES = ((1, 200), (100, 20))


def first_allowed(env: Any, obs: Any) -> np.ndarray:
    """The first allowed action of each row: a dict observation's `mask`, else action 0
    (all allowed)."""
    if isinstance(obs, dict):
        return np.argmax(obs["mask"], axis=-1)
    return np.zeros(len(obs), np.int64)


def time_scenario(env_id: str, batch: int, steps: int, repeats: int) -> list[float]:
    """Session-steps/s of each repeat of `steps` vector steps at `batch`."""
    env = make_vec_env(env_id, batch, seed=0)
    obs = env.reset(seed=0)[0]
    rates = []
    for i in range(repeats + 1):  # the first pass warms up
        start = time.perf_counter()
        for _ in range(steps):
            obs = env.step(first_allowed(env, obs))[0]
        if i:
            rates.append(batch * steps / (time.perf_counter() - start))
    env.close()
    return rates


def bench_scenarios(quick: bool, repeats: int = 3, say=print) -> dict[str, Any]:
    """`{env_id: [{"batch", "steps_per_s", "repeats"}, ...]}` for every scenario env."""
    say("scenario simulators: session-steps/s, median of repeats after a warm-up")
    figures: dict[str, Any] = {}
    for env_id in SCENARIO_ENVS:
        rows = []
        for batch, steps in QUICK_CASES if quick else FULL_CASES:
            rates = time_scenario(env_id, batch, steps, repeats)
            rows.append({"batch": batch, "steps_per_s": statistics.median(rates),
                         "repeats": rates})
            say(f"  {env_id} batch {batch:>7,}  {rows[-1]['steps_per_s']:>12,.0f}")
        figures[env_id] = rows
    return figures
