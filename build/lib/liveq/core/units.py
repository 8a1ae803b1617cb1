"""Units shared by the simulator and the log tools."""

MINUTES_PER_DAY = 24 * 60
"""Minutes in a day: the simulator's clock and the logs' day boundaries."""
