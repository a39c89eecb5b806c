"""Webhook plugin: a scheduled HTTP call."""
