"""Wiring of the items app for AWS (the Lambda entry point calls `build_aws_app`)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI

from serverless_scheduler_common.plugins import build_registry, get_plugin_manager
from serverless_scheduler_common.runtime.dynamodb import DynamoDBRunRepository
from serverless_scheduler_common.runtime.sns import SnsPublisher
from serverless_scheduler_common.settings import Settings
from serverless_scheduler_common.state import DynamoDBStateStore

from .app import create_app
from .auth import JWTClaimsAuthenticator
from .dynamodb_repository import DynamoDBJobRepository

log = logging.getLogger(__name__)


def build_aws_app(
    settings: Settings, *, dynamodb: Any | None = None, sns: Any | None = None
) -> FastAPI:
    """The items app over DynamoDB (jobs, runs) and SNS (manual runs), JWT-authenticated.

    `SCHEDULER_JOBS_TABLE` is required; without `SCHEDULER_RUNS_TABLE` the runs route
    answers 503, without `SCHEDULER_TOPIC_ARN` so does "run now", and without
    `SCHEDULER_STATE_TABLE` (the plugins' state table) so does the changes route.
    """
    import boto3

    if not settings.jobs_table:
        raise ValueError("jobs_table: SCHEDULER_JOBS_TABLE must name the jobs table")
    dynamodb = dynamodb or boto3.client("dynamodb", region_name=settings.aws_region)
    runs = None
    if settings.runs_table:
        runs = DynamoDBRunRepository(
            dynamodb, settings.runs_table, retention=settings.runs_retention
        )
    state = DynamoDBStateStore(dynamodb, settings.state_table) if settings.state_table else None
    publisher = None
    if settings.topic_arn:
        sns = sns or boto3.client("sns", region_name=settings.aws_region)
        publisher = SnsPublisher(sns, settings.topic_arn)
    # One plugin manager for job types and UI hints: the entry-point scan runs once.
    pm = get_plugin_manager(settings=settings)
    return create_app(
        settings=settings,
        repo=DynamoDBJobRepository(dynamodb, settings.jobs_table),
        runs=runs,
        publisher=publisher,
        state=state,
        authenticator=JWTClaimsAuthenticator(),
        registry=build_registry(pm),
        plugin_manager=pm,
    )
