output "ui_url" {
  description = "URL of the web UI."
  value       = module.platform.ui_url
}

output "api_url" {
  description = "Base URL of the HTTP API (REST under /api/v1)."
  value       = module.platform.api_url
}

output "cognito_domain" {
  description = "Cognito hosted UI domain."
  value       = module.platform.cognito_domain
}

output "user_pool_id" {
  description = "Cognito user pool id (invite users with aws cognito-idp admin-create-user)."
  value       = module.platform.user_pool_id
}

output "user_pool_client_id" {
  description = "Cognito app client id of the web UI."
  value       = module.platform.user_pool_client_id
}

output "web_bucket_name" {
  description = "Bucket holding the web UI bundle."
  value       = module.platform.web_bucket_name
}

output "web_distribution_id" {
  description = "CloudFront distribution id of the web UI."
  value       = module.platform.web_distribution_id
}

output "scheduler_dlq_url" {
  description = "Dead-letter queue of fires EventBridge Scheduler could not deliver."
  value       = module.platform.scheduler_dlq_url
}

output "sync_failures_queue_url" {
  description = "Queue of the job changes (stream records) the sync function could not apply."
  value       = module.platform.sync_failures_queue_url
}

output "distribution_topic_arn" {
  description = "ARN of the distribution topic fires are published to (`dlq redrive --aws --topic-arn`)."
  value       = module.platform.distribution_topic_arn
}

output "jobs_table_name" {
  description = "Name of the jobs table."
  value       = module.platform.jobs_table_name
}

output "reconcile_function_name" {
  description = "Name of the reconcile function (invoke it to repair drift at once)."
  value       = module.platform.reconcile_function_name
}

output "plugin_dlq_urls" {
  description = "Dead-letter queue of each enabled plugin's consumer."
  value = {
    html_checker = module.html_checker.dlq_url
    webhook      = module.webhook.dlq_url
  }
}
