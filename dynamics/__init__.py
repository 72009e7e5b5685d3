"""Koopman operators and state-space models (a later issue; not built yet)."""
