variable "platform" {
  description = "What every plugin needs from the core: the platform module's `platform` output."
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
}

variable "package_path" {
  description = "Path of the plugin's function zip built by utils/build."
  type        = string
}

variable "max_concurrency" {
  description = "Most concurrent consumer invocations."
  type        = number
  default     = 5
}
