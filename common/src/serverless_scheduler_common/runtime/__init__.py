"""Consumer runtime: how a fired job reaches the plugin that owns its job_type.

`core.ConsumerRuntime` holds the rules shared by every deployment (idempotency per
fire, overlap policy, run history, auto-pause); `dispatcher.LocalDispatcher` drives it
in local mode and `lambda_consumer.handler` on AWS. AWS adapters import boto3 lazily.
"""
