variable "name" {
  description = "Function name (also names its role and log group)."
  type        = string
}

variable "description" {
  description = "Human-readable description of the function."
  type        = string
  default     = ""
}

variable "handler" {
  description = "Python handler path, module.attribute."
  type        = string
}

variable "package_path" {
  description = "Path of the function's zip built by utils/build."
  type        = string
}

variable "runtime" {
  description = "Lambda runtime; must match the runtime the artifact was built for."
  type        = string
  default     = "python3.11"
}

variable "architecture" {
  description = "Instruction set: x86_64 or arm64; must match the artifact."
  type        = string
  default     = "x86_64"

  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "architecture must be x86_64 or arm64."
  }
}

variable "memory_size" {
  description = "Memory in MB (CPU scales with it)."
  type        = number
  default     = 256
}

variable "timeout" {
  description = "Timeout in seconds."
  type        = number
  default     = 30
}

variable "reserved_concurrency" {
  description = "Reserved concurrent executions; null leaves the function unreserved (new accounts cannot reserve any)."
  type        = number
  default     = null
}

variable "environment" {
  description = "Environment variables (SCHEDULER_* settings)."
  type        = map(string)
  default     = {}
}

variable "policy_statements" {
  description = "IAM statements of the function's role: exactly the actions its code calls, on its resources."
  type = list(object({
    sid       = string
    actions   = list(string)
    resources = list(string)
  }))
}

variable "log_retention_days" {
  description = "Retention of the function's log group, in days."
  type        = number
  default     = 90
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
