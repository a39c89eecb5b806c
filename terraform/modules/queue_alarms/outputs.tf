output "alarm_arns" {
  description = "ARN of each alarm, by name."
  value       = { for name, alarm in aws_cloudwatch_metric_alarm.this : name => alarm.arn }
}
