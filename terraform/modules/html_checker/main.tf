# HTML change checker: the plugin consumer plus its state table and SES sender identity.
locals {
  name = "${var.platform.name_prefix}-html-checker"

  state_statements = [
    {
      sid       = "PageState"
      actions   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:BatchWriteItem"]
      resources = [aws_dynamodb_table.state.arn]
    },
  ]

}

resource "aws_dynamodb_table" "state" {
  #checkov:skip=CKV_AWS_119:Encrypted at rest with the AWS-managed DynamoDB key; snapshots are copies of public pages.
  name         = "${local.name}-state"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "pk"
  range_key    = "sk"

  attribute {
    name = "pk"
    type = "S"
  }

  attribute {
    name = "sk"
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

  tags = var.platform.tags
}

resource "aws_sesv2_email_identity" "this" {
  count          = var.ses_identity == null ? 0 : 1
  email_identity = var.ses_identity
  tags           = var.platform.tags
}

module "consumer" {
  source = "../plugin_consumer"

  platform        = var.platform
  plugin_name     = "html-checker"
  job_types       = ["html_monitor_job"]
  package_path    = var.package_path
  memory_size     = 512
  timeout         = 90
  max_concurrency = var.max_concurrency

  environment = {
    SCHEDULER_STATE_TABLE = aws_dynamodb_table.state.name
  }

  # No ses:* grant: apprise's ses:// notifications sign with the keys in their URL, not
  # with this role (the identity above is what lets those keys send from the address).
  extra_policy_statements = local.state_statements
}
