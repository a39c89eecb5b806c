"""Serverless Scheduler: command line and local-mode composition root."""
