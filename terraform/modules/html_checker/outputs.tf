output "state_table_name" {
  description = "Name of the page state table."
  value       = aws_dynamodb_table.state.name
}

output "queue_url" {
  description = "URL of the checker's buffer queue."
  value       = module.consumer.queue_url
}

output "dlq_url" {
  description = "URL of the checker's dead-letter queue."
  value       = module.consumer.dlq_url
}

output "function_name" {
  description = "Name of the checker function."
  value       = module.consumer.function_name
}
