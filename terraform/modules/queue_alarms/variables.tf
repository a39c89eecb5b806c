variable "alarms" {
  description = "Alarms by name: the queue, its metric (ApproximateNumberOfMessagesVisible or ApproximateAgeOfOldestMessage), the threshold it must exceed, for how many 5-minute periods, and what it means."
  type = map(object({
    queue_name         = string
    metric             = string
    threshold          = number
    evaluation_periods = optional(number, 1)
    description        = string
  }))

  validation {
    condition = alltrue([
      for alarm in values(var.alarms) :
      contains(["ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage"], alarm.metric)
    ])
    error_message = "metric must be ApproximateNumberOfMessagesVisible or ApproximateAgeOfOldestMessage."
  }
}

variable "alarm_actions" {
  description = "ARNs notified when an alarm fires or clears (e.g. an SNS topic of the operators)."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags added to every alarm."
  type        = map(string)
  default     = {}
}
