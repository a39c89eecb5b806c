variable "name_prefix" {
  description = "Prefix of every resource name, e.g. scheduler-dev."
  type        = string
}

variable "publisher_role_arns" {
  description = "Roles allowed to publish to the topic (the EventBridge Scheduler role, the items function)."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
