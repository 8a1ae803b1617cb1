"""Off-policy estimators: IPS, SNIPS, DM, DR, switch-DR with bootstrap intervals."""
