variable "environment" {
  description = "Environment name (dev, prod); part of every resource name."
  type        = string
}

variable "project" {
  description = "Project name; part of every resource name."
  type        = string
  default     = "scheduler"
}

variable "lambda_runtime" {
  description = "Lambda runtime; utils/build must build for the same one."
  type        = string
  default     = "python3.11"
}

variable "lambda_architecture" {
  description = "Lambda architecture (x86_64 or arm64); utils/build must build for the same one."
  type        = string
  default     = "x86_64"
}

variable "artifacts_dir" {
  description = "Directory holding the zips utils/build wrote; relative paths start at the repository root."
  type        = string
  default     = "dist/lambda"
}

variable "cognito_domain_prefix" {
  description = "Globally unique prefix of the Cognito hosted UI domain."
  type        = string
}

variable "extra_cors_origins" {
  description = "Browser origins allowed besides the CloudFront UI (e.g. http://localhost:8080 in dev)."
  type        = list(string)
  default     = []
}

variable "log_retention_days" {
  description = "Retention of every log group, in days."
  type        = number
  default     = 30
}

variable "deletion_protection" {
  description = "Protect tables and the user pool from deletion; off also lets destroy empty the web bucket."
  type        = bool
  default     = false
}

variable "admin_email" {
  description = "Email of a first Cognito user to invite; null invites nobody."
  type        = string
  default     = null
  sensitive   = true
}

variable "tags" {
  description = "Tags added to every resource, over Project, Environment and ManagedBy."
  type        = map(string)
  default     = {}
}

variable "alarm_actions" {
  description = "ARNs notified when an alarm fires or clears (dead letters, undelivered fires, unapplied job changes, a consumer falling behind), e.g. an SNS topic the operators subscribe to. Empty: the alarms show in CloudWatch only."
  type        = list(string)
  default     = []
}
