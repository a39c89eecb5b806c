# Items service: jobs and runs tables, the API function, HTTP API with Cognito JWT auth.
data "aws_region" "current" {}

locals {
  function_name = "${var.name_prefix}-items"

  environment = {
    SCHEDULER_JOBS_TABLE   = aws_dynamodb_table.jobs.name
    SCHEDULER_RUNS_TABLE   = aws_dynamodb_table.runs.name
    SCHEDULER_TOPIC_ARN    = var.topic_arn
    SCHEDULER_CORS_ORIGINS = join(",", var.cors_origins)
  }

  policy_statements = [
    {
      # Conditional put/delete keep versions; the API lists by owner (Query), never scans.
      sid       = "JobsReadWrite"
      actions   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:Query"]
      resources = [aws_dynamodb_table.jobs.arn]
    },
    {
      # The API only reads run history (the consumers write and trim it).
      sid       = "RunsRead"
      actions   = ["dynamodb:Query"]
      resources = [aws_dynamodb_table.runs.arn]
    },
    {
      sid       = "RunNowPublish"
      actions   = ["sns:Publish"]
      resources = [var.topic_arn]
    },
    {
      sid       = "EncryptForTopic"
      actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
      resources = [var.topic_kms_key_arn]
    },
  ]
}

resource "aws_dynamodb_table" "jobs" {
  #checkov:skip=CKV_AWS_119:Encrypted at rest with the AWS-managed DynamoDB key; a customer key adds cost and key-policy coupling without a stated need.
  name                        = "${var.name_prefix}-jobs"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "owner_id"
  range_key                   = "job_id"
  stream_enabled              = true
  stream_view_type            = "NEW_AND_OLD_IMAGES"
  deletion_protection_enabled = var.deletion_protection

  attribute {
    name = "owner_id"
    type = "S"
  }

  attribute {
    name = "job_id"
    type = "S"
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled = true
  }

  tags = var.tags
}

resource "aws_dynamodb_table" "runs" {
  #checkov:skip=CKV_AWS_119:Encrypted at rest with the AWS-managed DynamoDB key; a customer key adds cost and key-policy coupling without a stated need.
  name                        = "${var.name_prefix}-runs"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "pk"
  range_key                   = "sk"
  deletion_protection_enabled = var.deletion_protection

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

  tags = var.tags
}

module "function" {
  source = "../lambda_function"

  name               = local.function_name
  description        = "Serverless Scheduler REST API (FastAPI via Mangum)"
  handler            = "serverless_scheduler_items.lambda_handler.handler"
  package_path       = var.package_path
  runtime            = var.lambda_runtime
  architecture       = var.lambda_architecture
  memory_size        = 512
  timeout            = 29
  environment        = local.environment
  policy_statements  = local.policy_statements
  log_retention_days = var.log_retention_days
  tags               = var.tags
}

# -- Cognito ----------------------------------------------------------------------------
resource "aws_cognito_user_pool" "this" {
  name                     = "${var.name_prefix}-users"
  deletion_protection      = var.deletion_protection ? "ACTIVE" : "INACTIVE"
  username_attributes      = ["email"]
  auto_verified_attributes = ["email"]
  mfa_configuration        = "OPTIONAL"

  software_token_mfa_configuration {
    enabled = true
  }

  admin_create_user_config {
    allow_admin_create_user_only = true
  }

  password_policy {
    minimum_length                   = 12
    require_lowercase                = true
    require_uppercase                = true
    require_numbers                  = true
    require_symbols                  = true
    temporary_password_validity_days = 3
  }

  account_recovery_setting {
    recovery_mechanism {
      name     = "verified_email"
      priority = 1
    }
  }

  tags = var.tags
}

resource "aws_cognito_user_pool_client" "web" {
  name                                 = "${var.name_prefix}-web"
  user_pool_id                         = aws_cognito_user_pool.this.id
  generate_secret                      = false
  allowed_oauth_flows_user_pool_client = true
  allowed_oauth_flows                  = ["code"]
  allowed_oauth_scopes                 = ["openid", "email", "profile"]
  supported_identity_providers         = ["COGNITO"]
  callback_urls                        = var.callback_urls
  logout_urls                          = var.logout_urls
  explicit_auth_flows                  = ["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
  prevent_user_existence_errors        = "ENABLED"
  enable_token_revocation              = true
  access_token_validity                = 60
  id_token_validity                    = 60
  refresh_token_validity               = 30

  token_validity_units {
    access_token  = "minutes"
    id_token      = "minutes"
    refresh_token = "days"
  }
}

resource "aws_cognito_user_pool_domain" "this" {
  domain       = var.cognito_domain_prefix
  user_pool_id = aws_cognito_user_pool.this.id
}

# -- HTTP API ---------------------------------------------------------------------------
resource "aws_cloudwatch_log_group" "api_access" {
  #checkov:skip=CKV_AWS_158:Access logs hold request metadata only; the AWS-managed encryption at rest is kept.
  #checkov:skip=CKV_AWS_338:Retention is an operator choice (log_retention_days).
  name              = "/aws/apigateway/${var.name_prefix}-api"
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

resource "aws_apigatewayv2_api" "this" {
  name          = "${var.name_prefix}-api"
  protocol_type = "HTTP"

  cors_configuration {
    allow_origins = var.cors_origins
    allow_methods = ["GET", "POST", "PUT", "DELETE", "OPTIONS"]
    allow_headers = ["authorization", "content-type", "if-match"]
    max_age       = 3600
  }

  tags = var.tags
}

resource "aws_apigatewayv2_authorizer" "jwt" {
  api_id           = aws_apigatewayv2_api.this.id
  name             = "cognito"
  authorizer_type  = "JWT"
  identity_sources = ["$request.header.Authorization"]

  jwt_configuration {
    audience = [aws_cognito_user_pool_client.web.id]
    issuer   = "https://cognito-idp.${data.aws_region.current.name}.amazonaws.com/${aws_cognito_user_pool.this.id}"
  }
}

resource "aws_apigatewayv2_integration" "function" {
  api_id                 = aws_apigatewayv2_api.this.id
  integration_type       = "AWS_PROXY"
  integration_uri        = module.function.function_invoke_arn
  payload_format_version = "2.0"
  timeout_milliseconds   = 29000
}

resource "aws_apigatewayv2_route" "api" {
  api_id             = aws_apigatewayv2_api.this.id
  route_key          = "ANY /api/v1/{proxy+}"
  target             = "integrations/${aws_apigatewayv2_integration.function.id}"
  authorization_type = "JWT"
  authorizer_id      = aws_apigatewayv2_authorizer.jwt.id
}

resource "aws_apigatewayv2_route" "public" {
  #checkov:skip=CKV_AWS_309:Health check and OpenAPI document are public by design and return no user data.
  for_each  = toset(["GET /api/v1/health", "GET /api/v1/openapi.json"])
  api_id    = aws_apigatewayv2_api.this.id
  route_key = each.value
  target    = "integrations/${aws_apigatewayv2_integration.function.id}"
}

resource "aws_apigatewayv2_stage" "this" {
  api_id      = aws_apigatewayv2_api.this.id
  name        = "$default"
  auto_deploy = true

  default_route_settings {
    throttling_rate_limit  = var.api_throttle_rate
    throttling_burst_limit = var.api_throttle_burst
  }

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.api_access.arn
    format = jsonencode({
      requestId      = "$context.requestId"
      ip             = "$context.identity.sourceIp"
      requestTime    = "$context.requestTime"
      httpMethod     = "$context.httpMethod"
      routeKey       = "$context.routeKey"
      status         = "$context.status"
      responseLength = "$context.responseLength"
      latency        = "$context.integrationLatency"
      error          = "$context.error.message"
      authError      = "$context.authorizer.error"
    })
  }

  tags = var.tags
}

resource "aws_lambda_permission" "api" {
  statement_id  = "AllowHttpApi"
  action        = "lambda:InvokeFunction"
  function_name = module.function.function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.this.execution_arn}/*/*"
}
