"""Policies: the Policy contract (act + full action distribution), exploration, baselines."""
