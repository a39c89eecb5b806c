output "queue_url" {
  description = "URL of the consumer's buffer queue."
  value       = aws_sqs_queue.this.url
}

output "queue_arn" {
  description = "ARN of the consumer's buffer queue."
  value       = aws_sqs_queue.this.arn
}

output "dlq_url" {
  description = "URL of the consumer's dead-letter queue."
  value       = aws_sqs_queue.dlq.url
}

output "dlq_arn" {
  description = "ARN of the consumer's dead-letter queue."
  value       = aws_sqs_queue.dlq.arn
}

output "idempotency_table_name" {
  description = "Name of the consumer's idempotency table."
  value       = aws_dynamodb_table.idempotency.name
}

output "function_name" {
  description = "Name of the consumer function."
  value       = module.function.function_name
}

output "function_role_name" {
  description = "Name of the consumer function's role."
  value       = module.function.role_name
}
