"""Core: exceptions, typed configs, statistics and output writers that every layer uses."""
