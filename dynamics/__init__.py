"""Koopman operators and state-space models (not built yet)."""
