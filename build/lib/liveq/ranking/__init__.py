"""The offline ranking protocol (LiveRec) and the models it ranks with: POP, REP, BPR, logged-Q."""
