"""Structure-preserving operator networks (SPON) on finite-element spaces."""
