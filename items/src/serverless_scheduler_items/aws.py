"""Wiring of the items app for AWS (the Lambda entry point calls `build_aws_app`)."""

from __future__ import annotations

import importlib
import logging
from typing import Any

from fastapi import FastAPI

from serverless_scheduler_common.ports import RunRepository
from serverless_scheduler_common.settings import Settings

from .app import create_app
from .auth import JWTClaimsAuthenticator
from .dynamodb_repository import DynamoDBJobRepository
from .sns_publisher import SNSPublisher

log = logging.getLogger(__name__)

#: Where the consumer runtime keeps its DynamoDB run history adapter.
RUN_REPOSITORY_PATH = "serverless_scheduler_common.runtime.dynamodb:DynamoDBRunRepository"


def _run_repository(settings: Settings, dynamodb: Any) -> RunRepository | None:
    if not settings.runs_table:
        return None
    module_name, _, class_name = RUN_REPOSITORY_PATH.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError):
        log.warning("no DynamoDB run repository installed; GET /runs answers 503")
        return None
    repo: RunRepository = cls(dynamodb, settings.runs_table)
    return repo


def build_aws_app(
    settings: Settings, *, dynamodb: Any | None = None, sns: Any | None = None
) -> FastAPI:
    """The items app over DynamoDB (jobs, runs) and SNS (manual runs), JWT-authenticated."""
    import boto3

    if not settings.jobs_table:
        raise ValueError("SCHEDULER_JOBS_TABLE must name the jobs table")
    dynamodb = dynamodb or boto3.client("dynamodb", region_name=settings.aws_region)
    publisher = None
    if settings.topic_arn:
        sns = sns or boto3.client("sns", region_name=settings.aws_region)
        publisher = SNSPublisher(sns, settings.topic_arn)
    return create_app(
        settings=settings,
        repo=DynamoDBJobRepository(dynamodb, settings.jobs_table),
        runs=_run_repository(settings, dynamodb),
        publisher=publisher,
        authenticator=JWTClaimsAuthenticator(),
    )
