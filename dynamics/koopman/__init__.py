"""Koopman operators learned from snapshot pairs: dictionaries, EDMD-type estimators, certificates."""
