output "topic_arn" {
  description = "ARN of the distribution topic."
  value       = aws_sns_topic.this.arn
}

output "topic_name" {
  description = "Name of the distribution topic."
  value       = aws_sns_topic.this.name
}

output "kms_key_arn" {
  description = "ARN of the key the topic is encrypted with (publishers need GenerateDataKey and Decrypt on it)."
  value       = aws_kms_key.this.arn
}
