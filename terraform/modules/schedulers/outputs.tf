output "schedule_group_name" {
  description = "Name of the schedule group holding one schedule per job."
  value       = aws_scheduler_schedule_group.this.name
}

output "scheduler_role_arn" {
  description = "ARN of the role EventBridge Scheduler assumes (a publisher of the distribution topic)."
  value       = aws_iam_role.scheduler.arn
}

output "scheduler_dlq_arn" {
  description = "ARN of the schedules' dead-letter queue."
  value       = aws_sqs_queue.scheduler_dlq.arn
}

output "scheduler_dlq_url" {
  description = "URL of the schedules' dead-letter queue."
  value       = aws_sqs_queue.scheduler_dlq.url
}

output "sync_failures_queue_url" {
  description = "URL of the queue that receives stream batches sync gave up on."
  value       = aws_sqs_queue.stream_failures.url
}

output "sync_role_arn" {
  description = "ARN of the sync function's role (a publisher of the distribution topic: removal notices)."
  value       = module.sync.role_arn
}

output "sync_function_name" {
  description = "Name of the sync function."
  value       = module.sync.function_name
}

output "reconcile_function_name" {
  description = "Name of the reconcile function."
  value       = module.reconcile.function_name
}
