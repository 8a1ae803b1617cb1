"""Off-policy estimators: one-step IPS, SNIPS, DM, DR, switch-DR with bootstrap intervals
(`estimators`); session-level PDWIS, WDR (`sessions`) and fitted Q evaluation (`fqe`) on
logged sessions; the promotion gate built on them (`gate`)."""
