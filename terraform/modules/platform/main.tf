# The core of one environment: distribution, items (API, tables, Cognito), schedulers and
# the web UI. Plugins attach to it through the `platform` output.
locals {
  name_prefix   = "${var.project}-${var.environment}"
  repo_root     = abspath("${path.module}/../../..")
  artifacts_dir = startswith(var.artifacts_dir, "/") ? var.artifacts_dir : "${local.repo_root}/${var.artifacts_dir}"

  tags = merge(
    {
      Project     = var.project
      Environment = var.environment
      ManagedBy   = "terraform"
    },
    var.tags,
  )
}

module "distribution" {
  source = "../distribution"

  name_prefix         = local.name_prefix
  publisher_role_arns = [module.schedulers.scheduler_role_arn, module.schedulers.sync_role_arn, module.items.function_role_arn]
  tags                = local.tags
}

module "items" {
  source = "../items"

  name_prefix           = local.name_prefix
  package_path          = "${local.artifacts_dir}/items.zip"
  lambda_runtime        = var.lambda_runtime
  lambda_architecture   = var.lambda_architecture
  topic_arn             = module.distribution.topic_arn
  topic_kms_key_arn     = module.distribution.kms_key_arn
  cors_origins          = concat([module.web.url], var.extra_cors_origins)
  callback_urls         = ["${module.web.url}/"]
  logout_urls           = ["${module.web.url}/"]
  cognito_domain_prefix = var.cognito_domain_prefix
  deletion_protection   = var.deletion_protection
  log_retention_days    = var.log_retention_days
  tags                  = local.tags
}

module "schedulers" {
  source = "../schedulers"

  name_prefix            = local.name_prefix
  sync_package_path      = "${local.artifacts_dir}/sync.zip"
  reconcile_package_path = "${local.artifacts_dir}/reconcile.zip"
  lambda_runtime         = var.lambda_runtime
  lambda_architecture    = var.lambda_architecture
  jobs_table_name        = module.items.jobs_table_name
  jobs_table_arn         = module.items.jobs_table_arn
  jobs_table_stream_arn  = module.items.jobs_table_stream_arn
  topic_arn              = module.distribution.topic_arn
  topic_kms_key_arn      = module.distribution.kms_key_arn
  log_retention_days     = var.log_retention_days
  alarm_actions          = var.alarm_actions
  tags                   = local.tags
}

module "web" {
  source = "../web"

  name_prefix         = local.name_prefix
  site_dir            = "${local.repo_root}/items/src/serverless_scheduler_items/static"
  api_url             = module.items.api_url
  cognito_domain      = module.items.cognito_domain
  user_pool_client_id = module.items.user_pool_client_id
  force_destroy       = !var.deletion_protection
  tags                = local.tags
}

resource "aws_cognito_user" "admin" {
  count        = var.admin_email == null ? 0 : 1
  user_pool_id = module.items.user_pool_id
  username     = var.admin_email

  attributes = {
    email          = var.admin_email
    email_verified = "true"
  }
}
