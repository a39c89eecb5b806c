output "queue_url" {
  description = "URL of the webhook consumer's buffer queue."
  value       = module.consumer.queue_url
}

output "dlq_url" {
  description = "URL of the webhook consumer's dead-letter queue."
  value       = module.consumer.dlq_url
}

output "function_name" {
  description = "Name of the webhook function."
  value       = module.consumer.function_name
}
