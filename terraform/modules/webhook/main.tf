# Webhook plugin: a scheduled HTTP call; needs nothing beyond the plugin consumer.
module "consumer" {
  source = "../plugin_consumer"

  name_prefix         = var.platform.name_prefix
  plugin_name         = "webhook"
  job_types           = ["webhook_job"]
  package_path        = var.package_path
  lambda_runtime      = var.platform.lambda_runtime
  lambda_architecture = var.platform.lambda_architecture
  memory_size         = 256
  timeout             = 60
  max_concurrency     = var.max_concurrency
  topic_arn           = var.platform.topic_arn
  jobs_table_name     = var.platform.jobs_table_name
  jobs_table_arn      = var.platform.jobs_table_arn
  runs_table_name     = var.platform.runs_table_name
  runs_table_arn      = var.platform.runs_table_arn
  log_retention_days  = var.platform.log_retention_days
  tags                = var.platform.tags
}
