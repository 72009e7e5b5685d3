"""Neural operators, training and learned preconditioners (issue 6; not built yet)."""
