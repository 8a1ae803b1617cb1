"""Learners: one readable file per algorithm (DQN, tabular Q-learning, offline objectives)."""
