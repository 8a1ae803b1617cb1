"""liveq: reinforcement-learning recommendation for live-streaming platforms."""

__version__ = "0.1.0"
