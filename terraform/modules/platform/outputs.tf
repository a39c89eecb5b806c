output "platform" {
  description = "Everything a plugin module needs from the core, as one value: pass it as the plugin's `platform` input."
  value = {
    name_prefix         = local.name_prefix
    topic_arn           = module.distribution.topic_arn
    jobs_table_name     = module.items.jobs_table_name
    jobs_table_arn      = module.items.jobs_table_arn
    runs_table_name     = module.items.runs_table_name
    runs_table_arn      = module.items.runs_table_arn
    lambda_runtime      = var.lambda_runtime
    lambda_architecture = var.lambda_architecture
    log_retention_days  = var.log_retention_days
    tags                = local.tags
    alarm_actions       = var.alarm_actions
  }
}

output "artifacts_dir" {
  description = "Absolute directory of the Lambda zips; a plugin's `package_path` is `<artifacts_dir>/<plugin>.zip`."
  value       = local.artifacts_dir
}

output "tags" {
  description = "Tags every resource carries (Project, Environment, ManagedBy and the extra ones)."
  value       = local.tags
}

output "ui_url" {
  description = "URL of the web UI."
  value       = module.web.url
}

output "api_url" {
  description = "Base URL of the HTTP API (REST under /api/v1)."
  value       = module.items.api_url
}

output "cognito_domain" {
  description = "Cognito hosted UI domain."
  value       = module.items.cognito_domain
}

output "user_pool_id" {
  description = "Cognito user pool id (invite users with aws cognito-idp admin-create-user)."
  value       = module.items.user_pool_id
}

output "user_pool_client_id" {
  description = "Cognito app client id of the web UI."
  value       = module.items.user_pool_client_id
}

output "web_bucket_name" {
  description = "Bucket holding the web UI bundle."
  value       = module.web.bucket_name
}

output "web_distribution_id" {
  description = "CloudFront distribution id of the web UI."
  value       = module.web.distribution_id
}

output "scheduler_dlq_url" {
  description = "Dead-letter queue of fires EventBridge Scheduler could not deliver."
  value       = module.schedulers.scheduler_dlq_url
}

output "sync_failures_queue_url" {
  description = "Queue of the job changes (stream records) the sync function could not apply."
  value       = module.schedulers.sync_failures_queue_url
}

output "distribution_topic_arn" {
  description = "ARN of the distribution topic fires are published to (`dlq redrive --aws --topic-arn`)."
  value       = module.distribution.topic_arn
}

output "jobs_table_name" {
  description = "Name of the jobs table."
  value       = module.items.jobs_table_name
}

output "reconcile_function_name" {
  description = "Name of the reconcile function (invoke it to repair drift at once)."
  value       = module.schedulers.reconcile_function_name
}
