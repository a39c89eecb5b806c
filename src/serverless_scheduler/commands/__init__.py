"""Subcommands of `serverless-scheduler`, one module each (see `cli.py`)."""
