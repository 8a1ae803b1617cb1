"""liveq: reinforcement-learning recommendation for live-streaming platforms.

Importing `liveq` registers its Gymnasium environments (`liveq/LiveStream-v0`, the chain),
so `gymnasium.make("liveq/LiveStream-v0")` works after a plain `import liveq`.
"""

import liveq.sim  # noqa: F401  (registers the envs)

__version__ = "0.1.0"
