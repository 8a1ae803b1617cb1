"""Neural networks shared by the learners (Q-networks over candidate tables or flat obs)."""
