"""Run and simulator configs shipped with liveq; `--config NAME` finds them by name."""
