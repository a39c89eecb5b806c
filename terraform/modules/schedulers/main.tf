# Schedulers: stream-driven sync into EventBridge Scheduler, plus the periodic reconciler.
data "aws_caller_identity" "current" {}

data "aws_region" "current" {}

data "aws_partition" "current" {}

locals {
  schedule_arn_pattern = "arn:${data.aws_partition.current.partition}:scheduler:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:schedule/${aws_scheduler_schedule_group.this.name}/*"

  environment = {
    SCHEDULER_JOBS_TABLE         = var.jobs_table_name
    SCHEDULER_SCHEDULE_GROUP     = aws_scheduler_schedule_group.this.name
    SCHEDULER_TOPIC_ARN          = var.topic_arn
    SCHEDULER_SCHEDULER_ROLE_ARN = aws_iam_role.scheduler.arn
    SCHEDULER_SCHEDULER_DLQ_ARN  = aws_sqs_queue.scheduler_dlq.arn
  }

  schedule_statements = [
    {
      sid       = "ManageSchedules"
      actions   = ["scheduler:CreateSchedule", "scheduler:UpdateSchedule", "scheduler:DeleteSchedule", "scheduler:GetSchedule"]
      resources = [local.schedule_arn_pattern]
    },
    {
      # CreateSchedule/UpdateSchedule hand this role to the schedule's target.
      sid       = "PassSchedulerRole"
      actions   = ["iam:PassRole"]
      resources = [aws_iam_role.scheduler.arn]
    },
  ]

  # A deleted job's notice (`JobRemoved`) goes to its plugin through the topic: sent by
  # the sync function, and by the reconciler for an orphan schedule (a deletion that
  # never synced) before it deletes it.
  announce_statements = [
    {
      sid       = "AnnounceRemovals"
      actions   = ["sns:Publish"]
      resources = [var.topic_arn]
    },
    {
      # The topic is KMS-encrypted: publishing needs a data key from its key.
      sid       = "EncryptForTopic"
      actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
      resources = [var.topic_kms_key_arn]
    },
  ]

  sync_policy_statements = concat(local.schedule_statements, [
    {
      sid       = "ReadJobsStream"
      actions   = ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"]
      resources = [var.jobs_table_stream_arn]
    },
    {
      # The stream's on-failure destination, and where malformed records are parked.
      sid       = "StreamFailureDestination"
      actions   = ["sqs:SendMessage"]
      resources = [aws_sqs_queue.stream_failures.arn]
    },
  ], local.announce_statements)

  reconcile_policy_statements = concat(local.schedule_statements, [
    {
      # Only the reconciler lists schedules; ListSchedules has no resource-level permissions.
      sid       = "ListSchedules"
      actions   = ["scheduler:ListSchedules"]
      resources = ["*"]
    },
    {
      sid       = "ReadJobs"
      actions   = ["dynamodb:Scan"]
      resources = [var.jobs_table_arn]
    },
  ], local.announce_statements)
}

resource "aws_scheduler_schedule_group" "this" {
  name = "${var.name_prefix}-jobs"
  tags = var.tags
}

# -- queues -----------------------------------------------------------------------------
resource "aws_sqs_queue" "scheduler_dlq" {
  name                      = "${var.name_prefix}-scheduler-dlq"
  message_retention_seconds = 1209600
  sqs_managed_sse_enabled   = true
  tags                      = var.tags
}

resource "aws_sqs_queue" "stream_failures" {
  name                      = "${var.name_prefix}-sync-failures"
  message_retention_seconds = 1209600
  sqs_managed_sse_enabled   = true
  tags                      = var.tags
}

# -- the role EventBridge Scheduler assumes to publish fires ----------------------------
data "aws_iam_policy_document" "scheduler_assume" {
  statement {
    sid     = "SchedulerAssume"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_iam_role" "scheduler" {
  name               = "${var.name_prefix}-scheduler"
  assume_role_policy = data.aws_iam_policy_document.scheduler_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "scheduler" {
  statement {
    sid       = "PublishFires"
    actions   = ["sns:Publish"]
    resources = [var.topic_arn]
  }

  statement {
    # The topic is KMS-encrypted: publishing needs a data key from its key.
    sid       = "EncryptForTopic"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [var.topic_kms_key_arn]
  }

  statement {
    # Scheduler delivers undeliverable fires to the dead-letter queue with this role.
    sid       = "DeadLetter"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.scheduler_dlq.arn]
  }
}

resource "aws_iam_role_policy" "scheduler" {
  name   = "${var.name_prefix}-scheduler-publish"
  role   = aws_iam_role.scheduler.id
  policy = data.aws_iam_policy_document.scheduler.json
}

# -- sync -------------------------------------------------------------------------------
module "sync" {
  source = "../lambda_function"

  name               = "${var.name_prefix}-sync"
  description        = "Applies job changes from the jobs stream to EventBridge Scheduler"
  handler            = "serverless_scheduler_schedulers.lambda_sync.handler"
  package_path       = var.sync_package_path
  runtime            = var.lambda_runtime
  architecture       = var.lambda_architecture
  memory_size        = 256
  timeout            = 60
  environment        = merge(local.environment, { SCHEDULER_DEAD_LETTER_QUEUE_URL = aws_sqs_queue.stream_failures.url })
  policy_statements  = local.sync_policy_statements
  log_retention_days = var.log_retention_days
  tags               = var.tags
}

resource "aws_lambda_event_source_mapping" "sync" {
  event_source_arn                   = var.jobs_table_stream_arn
  function_name                      = module.sync.function_arn
  starting_position                  = "TRIM_HORIZON"
  batch_size                         = var.stream_batch_size
  maximum_batching_window_in_seconds = 1
  function_response_types            = ["ReportBatchItemFailures"]
  bisect_batch_on_function_error     = true
  maximum_retry_attempts             = var.stream_max_retries
  maximum_record_age_in_seconds      = var.stream_max_record_age_s
  parallelization_factor             = 1

  destination_config {
    on_failure {
      destination_arn = aws_sqs_queue.stream_failures.arn
    }
  }
}

# -- reconcile --------------------------------------------------------------------------
module "reconcile" {
  source = "../lambda_function"

  name               = "${var.name_prefix}-reconcile"
  description        = "Repairs drift between the jobs table and the schedules"
  handler            = "serverless_scheduler_schedulers.lambda_reconcile.handler"
  package_path       = var.reconcile_package_path
  runtime            = var.lambda_runtime
  architecture       = var.lambda_architecture
  memory_size        = 256
  timeout            = 300
  environment        = local.environment
  policy_statements  = local.reconcile_policy_statements
  log_retention_days = var.log_retention_days
  tags               = var.tags
}

resource "aws_cloudwatch_event_rule" "reconcile" {
  name                = "${var.name_prefix}-reconcile"
  description         = "Runs the reconciler"
  schedule_expression = var.reconcile_rate
  tags                = var.tags
}

resource "aws_cloudwatch_event_target" "reconcile" {
  rule = aws_cloudwatch_event_rule.reconcile.name
  arn  = module.reconcile.function_arn
}

resource "aws_lambda_permission" "reconcile" {
  statement_id  = "AllowReconcileRule"
  action        = "lambda:InvokeFunction"
  function_name = module.reconcile.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.reconcile.arn
}

# -- alarms: fires EventBridge could not deliver, job changes the sync could not apply ----
module "alarms" {
  source = "../queue_alarms"

  alarms = {
    "${var.name_prefix}-undelivered-fires" = {
      queue_name  = aws_sqs_queue.scheduler_dlq.name
      metric      = "ApproximateNumberOfMessagesVisible"
      threshold   = 0
      description = "EventBridge Scheduler could not publish fires to the distribution topic after its retries; they wait in ${aws_sqs_queue.scheduler_dlq.name}."
    }
    "${var.name_prefix}-sync-failures" = {
      queue_name  = aws_sqs_queue.stream_failures.name
      metric      = "ApproximateNumberOfMessagesVisible"
      threshold   = 0
      description = "Job changes the sync function could not apply wait in ${aws_sqs_queue.stream_failures.name}; their schedules drift until the next reconcile (${var.reconcile_rate})."
    }
  }
  alarm_actions = var.alarm_actions
  tags          = var.tags
}
