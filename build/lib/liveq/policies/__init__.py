"""Policies: the Policy contract (act + full action distribution, `base`), exploration
wrappers and the epsilon schedule (`explore`), and the non-learning baselines."""
