# One Lambda function with its own role, inline least-privilege policy and log group.
data "aws_iam_policy_document" "assume" {
  statement {
    sid     = "LambdaAssume"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "this" {
  name               = var.name
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = var.tags
}

resource "aws_cloudwatch_log_group" "this" {
  #checkov:skip=CKV_AWS_158:Logs hold no secrets (secret job fields are masked before logging); the AWS-managed encryption at rest is kept to avoid a key per log group.
  #checkov:skip=CKV_AWS_338:Retention is an operator choice (log_retention_days); a year of debug logs is not worth its cost in dev.
  name              = "/aws/lambda/${var.name}"
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

data "aws_iam_policy_document" "this" {
  statement {
    sid       = "WriteOwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }

  statement {
    # X-Ray has no resource-level permissions for these two actions.
    sid       = "Tracing"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"]
  }

  dynamic "statement" {
    for_each = var.policy_statements
    content {
      sid       = statement.value.sid
      actions   = statement.value.actions
      resources = statement.value.resources
    }
  }
}

resource "aws_iam_role_policy" "this" {
  name   = "${var.name}-policy"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.this.json
}

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_116:Invoked by event source mappings (their own on-failure destinations), API Gateway (synchronous) or a 15-minute rule that retries by running again; a DLQ would stay empty.
  #checkov:skip=CKV_AWS_117:The functions call public AWS endpoints and fetch public web pages; a VPC would need a NAT gateway for no isolation gain.
  #checkov:skip=CKV_AWS_173:The environment holds resource names only, never secrets; AWS encrypts it at rest with the managed key.
  #checkov:skip=CKV_AWS_272:Artifacts are built reproducibly from the locked workspace; code signing needs a Signer profile per account and is left to operators.
  #checkov:skip=CKV_AWS_115:Reserved concurrency is optional (reserved_concurrency); new accounts have no unreserved capacity to give, so a default would fail the first apply.
  function_name                  = var.name
  description                    = var.description
  role                           = aws_iam_role.this.arn
  handler                        = var.handler
  runtime                        = var.runtime
  architectures                  = [var.architecture]
  filename                       = var.package_path
  source_code_hash               = filebase64sha256(var.package_path)
  memory_size                    = var.memory_size
  timeout                        = var.timeout
  reserved_concurrent_executions = var.reserved_concurrency == null ? -1 : var.reserved_concurrency

  environment {
    variables = var.environment
  }

  # JSON lines from Lambda's own logging integration: the runtime formats every record
  # of Python's logging (level, logger, message, request id) and sets the root level
  # from application_log_level, so the functions' INFO lines are kept.
  logging_config {
    log_format            = "JSON"
    application_log_level = "INFO"
    system_log_level      = "WARN"
    log_group             = aws_cloudwatch_log_group.this.name
  }

  tracing_config {
    mode = "Active"
  }

  tags = var.tags

  depends_on = [aws_iam_role_policy.this]
}
