"""State-space sequence layers (HiPPO, S4D, DSS, S5, STU) and SSM time-steppers."""
