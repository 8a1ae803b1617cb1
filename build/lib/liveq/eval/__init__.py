"""Online evaluation of policies in the simulator."""
