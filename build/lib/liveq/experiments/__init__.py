"""Studies that combine the library: off-policy evaluation studies and benchmarks."""
