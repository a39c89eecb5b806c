output "api_url" {
  description = "Base URL of the HTTP API (the REST API lives under /api/v1)."
  value       = aws_apigatewayv2_api.this.api_endpoint
}

output "jobs_table_name" {
  description = "Name of the jobs table."
  value       = aws_dynamodb_table.jobs.name
}

output "jobs_table_arn" {
  description = "ARN of the jobs table."
  value       = aws_dynamodb_table.jobs.arn
}

output "jobs_table_stream_arn" {
  description = "ARN of the jobs table stream (NEW_AND_OLD_IMAGES)."
  value       = aws_dynamodb_table.jobs.stream_arn
}

output "runs_table_name" {
  description = "Name of the run history table."
  value       = aws_dynamodb_table.runs.name
}

output "runs_table_arn" {
  description = "ARN of the run history table."
  value       = aws_dynamodb_table.runs.arn
}

output "function_name" {
  description = "Name of the items function."
  value       = module.function.function_name
}

output "function_role_arn" {
  description = "ARN of the items function's role (a publisher of the distribution topic)."
  value       = module.function.role_arn
}

output "user_pool_id" {
  description = "Cognito user pool id."
  value       = aws_cognito_user_pool.this.id
}

output "user_pool_client_id" {
  description = "Cognito app client id of the web UI."
  value       = aws_cognito_user_pool_client.web.id
}

output "cognito_domain" {
  description = "Hosted UI domain of the user pool."
  value       = "${aws_cognito_user_pool_domain.this.domain}.auth.${data.aws_region.current.name}.amazoncognito.com"
}
