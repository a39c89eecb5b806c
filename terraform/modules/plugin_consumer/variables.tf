variable "platform" {
  description = "What every plugin needs from the core (the platform module's `platform` output). When set, it supplies name_prefix, topic_arn, the jobs and runs tables, lambda_runtime, lambda_architecture, log_retention_days, tags and alarm_actions, and those inputs are ignored."
  type = object({
    name_prefix         = string
    topic_arn           = string
    jobs_table_name     = string
    jobs_table_arn      = string
    runs_table_name     = string
    runs_table_arn      = string
    lambda_runtime      = string
    lambda_architecture = string
    log_retention_days  = number
    tags                = map(string)
    alarm_actions       = optional(list(string), [])
  })
  default = null
}

variable "name_prefix" {
  description = "Prefix of every resource name, e.g. scheduler-dev. Ignored when `platform` is set."
  type        = string
  default     = null
}

variable "plugin_name" {
  description = "Short name of the plugin (names its queue, table and function)."
  type        = string
}

variable "job_types" {
  description = "Job types this consumer handles (the SNS filter policy on job_type)."
  type        = list(string)
}

variable "package_path" {
  description = "Path of the plugin's function zip built by utils/build."
  type        = string
}

variable "lambda_runtime" {
  description = "Lambda runtime the artifact was built for. Ignored when `platform` is set."
  type        = string
  default     = "python3.11"
}

variable "lambda_architecture" {
  description = "Lambda architecture the artifact was built for (x86_64 or arm64). Ignored when `platform` is set."
  type        = string
  default     = "x86_64"
}

variable "memory_size" {
  description = "Memory of the consumer function in MB."
  type        = number
  default     = 256
}

variable "timeout" {
  description = "Timeout of the consumer function in seconds."
  type        = number
  default     = 60
}

variable "topic_arn" {
  description = "Distribution topic to subscribe to. Ignored when `platform` is set."
  type        = string
  default     = null
}

variable "jobs_table_name" {
  description = "Name of the jobs table (the runtime pauses a job after repeated failures). Ignored when `platform` is set."
  type        = string
  default     = null
}

variable "jobs_table_arn" {
  description = "ARN of the jobs table. Ignored when `platform` is set."
  type        = string
  default     = null
}

variable "runs_table_name" {
  description = "Name of the run history table. Ignored when `platform` is set."
  type        = string
  default     = null
}

variable "runs_table_arn" {
  description = "ARN of the run history table. Ignored when `platform` is set."
  type        = string
  default     = null
}

variable "environment" {
  description = "Extra SCHEDULER_* settings of the plugin (e.g. its state table)."
  type        = map(string)
  default     = {}
}

variable "extra_policy_statements" {
  description = "Extra IAM statements the plugin's own adapters need."
  type = list(object({
    sid       = string
    actions   = list(string)
    resources = list(string)
  }))
  default = []
}

variable "batch_size" {
  description = "Messages per consumer invocation."
  type        = number
  default     = 10
}

variable "max_concurrency" {
  description = "Most concurrent consumer invocations the queue drives (2..1000)."
  type        = number
  default     = 5
}

variable "max_receive_count" {
  description = "Deliveries of one message before it moves to the dead-letter queue (the runtime's SCHEDULER_MAX_ATTEMPTS)."
  type        = number
  default     = 5

  validation {
    condition     = var.max_receive_count >= 1 && var.max_receive_count <= 50
    error_message = "max_receive_count must be between 1 and 50 (the range of SCHEDULER_MAX_ATTEMPTS)."
  }
}

variable "log_retention_days" {
  description = "Retention of the function's log group, in days. Ignored when `platform` is set."
  type        = number
  default     = 90
}

variable "tags" {
  description = "Tags added to every resource. Ignored when `platform` is set."
  type        = map(string)
  default     = {}
}

variable "alarm_actions" {
  description = "ARNs notified when an alarm of this consumer fires or clears (e.g. an SNS topic of the operators). Ignored when `platform` is set."
  type        = list(string)
  default     = []
}

variable "queue_age_alarm_s" {
  description = "Age of the oldest waiting fire, in seconds, past which the consumer counts as falling behind (alarm)."
  type        = number
  default     = 900
}
