variable "name_prefix" {
  description = "Prefix of every resource name, e.g. scheduler-dev."
  type        = string
}

variable "sync_package_path" {
  description = "Path of the sync function zip built by utils/build."
  type        = string
}

variable "reconcile_package_path" {
  description = "Path of the reconcile function zip built by utils/build."
  type        = string
}

variable "lambda_runtime" {
  description = "Lambda runtime the artifacts were built for."
  type        = string
  default     = "python3.11"
}

variable "lambda_architecture" {
  description = "Lambda architecture the artifacts were built for (x86_64 or arm64)."
  type        = string
  default     = "x86_64"
}

variable "jobs_table_name" {
  description = "Name of the jobs table."
  type        = string
}

variable "jobs_table_arn" {
  description = "ARN of the jobs table."
  type        = string
}

variable "jobs_table_stream_arn" {
  description = "ARN of the jobs table stream the sync function consumes."
  type        = string
}

variable "topic_arn" {
  description = "Distribution topic every schedule publishes its JobFired to."
  type        = string
}

variable "topic_kms_key_arn" {
  description = "ARN of the key the distribution topic is encrypted with."
  type        = string
}

variable "stream_batch_size" {
  description = "Stream records per sync invocation."
  type        = number
  default     = 100
}

variable "stream_max_retries" {
  description = "Retries of a failing stream batch before it goes to the failure queue."
  type        = number
  default     = 5
}

variable "stream_max_record_age_s" {
  description = "Oldest stream record (seconds) still retried."
  type        = number
  default     = 3600
}

variable "reconcile_rate" {
  description = "How often the reconciler runs (an EventBridge rate expression)."
  type        = string
  default     = "rate(15 minutes)"
}

variable "log_retention_days" {
  description = "Retention of the log groups, in days."
  type        = number
  default     = 90
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

variable "alarm_actions" {
  description = "ARNs notified when an alarm of the schedulers fires or clears (e.g. an SNS topic of the operators)."
  type        = list(string)
  default     = []
}
