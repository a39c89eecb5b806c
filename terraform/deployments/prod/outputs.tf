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

output "plugin_dlq_urls" {
  description = "Dead-letter queue of each enabled plugin's consumer."
  value = {
    html_checker = module.html_checker.dlq_url
    webhook      = module.webhook.dlq_url
  }
}
