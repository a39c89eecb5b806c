output "url" {
  description = "HTTPS URL of the web UI."
  value       = local.ui_url
}

output "bucket_name" {
  description = "Name of the bucket holding the UI bundle."
  value       = aws_s3_bucket.this.bucket
}

output "distribution_id" {
  description = "CloudFront distribution id (for cache invalidations)."
  value       = aws_cloudfront_distribution.this.id
}
