"""Schedulers: keep one schedule per job in sync, fire due jobs locally, reconcile drift."""
