# The reusable consumer of one plugin: filtered SNS subscription -> SQS (+ DLQ) -> Lambda.
locals {
  # The core values: from `platform` (what plugin modules pass), else the single inputs.
  core = var.platform != null ? var.platform : {
    name_prefix         = var.name_prefix
    topic_arn           = var.topic_arn
    jobs_table_name     = var.jobs_table_name
    jobs_table_arn      = var.jobs_table_arn
    runs_table_name     = var.runs_table_name
    runs_table_arn      = var.runs_table_arn
    lambda_runtime      = var.lambda_runtime
    lambda_architecture = var.lambda_architecture
    log_retention_days  = var.log_retention_days
    tags                = var.tags
    alarm_actions       = var.alarm_actions
  }
  core_complete = alltrue([
    for value in [
      local.core.name_prefix, local.core.topic_arn, local.core.jobs_table_name,
      local.core.jobs_table_arn, local.core.runs_table_name, local.core.runs_table_arn,
    ] : value != null
  ])

  name = "${local.core.name_prefix}-${var.plugin_name}"

  base_environment = {
    SCHEDULER_JOBS_TABLE            = local.core.jobs_table_name
    SCHEDULER_RUNS_TABLE            = local.core.runs_table_name
    SCHEDULER_IDEMPOTENCY_TABLE     = aws_dynamodb_table.idempotency.name
    SCHEDULER_DEAD_LETTER_QUEUE_URL = aws_sqs_queue.dlq.url
    # The runtime's last attempt (failure count, pause_after_failures) is the delivery
    # after which SQS moves the message to the DLQ.
    SCHEDULER_MAX_ATTEMPTS = tostring(var.max_receive_count)
    # The in-progress marker outlives any run (the function timeout) but expires before
    # SQS delivers the message again (the visibility timeout, 6 x timeout): a fire whose
    # invocation timed out or crashed then runs again instead of being "skipped" behind
    # its own stale marker.
    SCHEDULER_RUN_LOCK_TTL_S = tostring(var.timeout * 2)
  }

  base_policy_statements = [
    {
      sid       = "ConsumeQueue"
      actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility"]
      resources = [aws_sqs_queue.this.arn]
    },
    {
      # Invalid fires go straight to the DLQ; the same adapter lists and redrives it.
      sid       = "DeadLetter"
      actions   = ["sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage"]
      resources = [aws_sqs_queue.dlq.arn]
    },
    {
      sid       = "Idempotency"
      actions   = ["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]
      resources = [aws_dynamodb_table.idempotency.arn]
    },
    {
      sid       = "RunHistory"
      actions   = ["dynamodb:PutItem", "dynamodb:Query", "dynamodb:DeleteItem"]
      resources = [local.core.runs_table_arn]
    },
    {
      sid       = "PauseFailingJobs"
      actions   = ["dynamodb:GetItem", "dynamodb:UpdateItem"]
      resources = [local.core.jobs_table_arn]
    },
  ]
}

resource "aws_sqs_queue" "dlq" {
  name                      = "${local.name}-dlq"
  message_retention_seconds = 1209600
  sqs_managed_sse_enabled   = true
  tags                      = local.core.tags

  lifecycle {
    precondition {
      condition     = local.core_complete
      error_message = "plugin_consumer needs `platform`, or all of name_prefix, topic_arn, jobs_table_name, jobs_table_arn, runs_table_name and runs_table_arn."
    }
  }
}

resource "aws_sqs_queue" "this" {
  name                       = local.name
  visibility_timeout_seconds = var.timeout * 6
  message_retention_seconds  = 345600
  sqs_managed_sse_enabled    = true

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq.arn
    maxReceiveCount     = var.max_receive_count
  })

  tags = local.core.tags
}

resource "aws_sqs_queue_redrive_allow_policy" "dlq" {
  queue_url = aws_sqs_queue.dlq.id

  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.this.arn]
  })
}

data "aws_iam_policy_document" "queue" {
  statement {
    sid       = "TopicDelivers"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.this.arn]

    principals {
      type        = "Service"
      identifiers = ["sns.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [local.core.topic_arn]
    }
  }
}

resource "aws_sqs_queue_policy" "this" {
  queue_url = aws_sqs_queue.this.id
  policy    = data.aws_iam_policy_document.queue.json
}

resource "aws_sns_topic_subscription" "this" {
  topic_arn            = local.core.topic_arn
  protocol             = "sqs"
  endpoint             = aws_sqs_queue.this.arn
  raw_message_delivery = true
  filter_policy_scope  = "MessageBody"
  filter_policy        = jsonencode({ job_type = var.job_types })

  depends_on = [aws_sqs_queue_policy.this]
}

resource "aws_dynamodb_table" "idempotency" {
  #checkov:skip=CKV_AWS_119:Encrypted at rest with the AWS-managed DynamoDB key; records are short-lived dedupe keys.
  name         = "${local.name}-idempotency"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "pk"

  attribute {
    name = "pk"
    type = "S"
  }

  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled = true
  }

  tags = local.core.tags
}

module "function" {
  source = "../lambda_function"

  name               = local.name
  description        = "Consumer of ${join(", ", var.job_types)} fires"
  handler            = "serverless_scheduler_common.runtime.lambda_consumer.handler"
  package_path       = var.package_path
  runtime            = local.core.lambda_runtime
  architecture       = local.core.lambda_architecture
  memory_size        = var.memory_size
  timeout            = var.timeout
  environment        = merge(local.base_environment, var.environment)
  policy_statements  = concat(local.base_policy_statements, var.extra_policy_statements)
  log_retention_days = local.core.log_retention_days
  tags               = local.core.tags
}

resource "aws_lambda_event_source_mapping" "this" {
  event_source_arn                   = aws_sqs_queue.this.arn
  function_name                      = module.function.function_arn
  batch_size                         = var.batch_size
  maximum_batching_window_in_seconds = 1
  function_response_types            = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = var.max_concurrency
  }
}

# -- alarms: fires that failed for good, and a consumer that falls behind -----------------
module "alarms" {
  source = "../queue_alarms"

  alarms = {
    "${local.name}-dead-letters" = {
      queue_name  = aws_sqs_queue.dlq.name
      metric      = "ApproximateNumberOfMessagesVisible"
      threshold   = 0
      description = "Fires of ${var.plugin_name} failed every attempt and wait in ${aws_sqs_queue.dlq.name}: fix the cause, then `serverless-scheduler dlq redrive --aws`."
    }
    "${local.name}-behind" = {
      queue_name         = aws_sqs_queue.this.name
      metric             = "ApproximateAgeOfOldestMessage"
      threshold          = var.queue_age_alarm_s
      evaluation_periods = 2
      description        = "The oldest fire waiting for ${var.plugin_name} is older than ${var.queue_age_alarm_s} s: the consumer does not keep up (errors, throttling, or max_concurrency too low)."
    }
  }
  alarm_actions = local.core.alarm_actions
  tags          = local.core.tags
}
