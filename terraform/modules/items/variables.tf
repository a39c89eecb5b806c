variable "name_prefix" {
  description = "Prefix of every resource name, e.g. scheduler-dev."
  type        = string
}

variable "package_path" {
  description = "Path of the items function zip built by utils/build."
  type        = string
}

variable "lambda_runtime" {
  description = "Lambda runtime the artifact was built for."
  type        = string
  default     = "python3.11"
}

variable "lambda_architecture" {
  description = "Lambda architecture the artifact was built for (x86_64 or arm64)."
  type        = string
  default     = "x86_64"
}

variable "topic_arn" {
  description = "Distribution topic ARN ('run now' publishes a fire to it)."
  type        = string
}

variable "topic_kms_key_arn" {
  description = "ARN of the key the distribution topic is encrypted with."
  type        = string
}

variable "cors_origins" {
  description = "Browser origins allowed to call the API (the web UI's URL)."
  type        = list(string)
  default     = []
}

variable "callback_urls" {
  description = "OAuth callback URLs of the web UI's Cognito app client."
  type        = list(string)
}

variable "logout_urls" {
  description = "Sign-out URLs of the web UI's Cognito app client."
  type        = list(string)
}

variable "cognito_domain_prefix" {
  description = "Prefix of the Cognito hosted UI domain (<prefix>.auth.<region>.amazoncognito.com); globally unique."
  type        = string
}

variable "deletion_protection" {
  description = "Protect the jobs and runs tables and the user pool from deletion (turn on in prod)."
  type        = bool
  default     = false
}


variable "api_throttle_rate" {
  description = "Steady-state requests per second the API accepts."
  type        = number
  default     = 50
}

variable "api_throttle_burst" {
  description = "Burst of requests the API accepts."
  type        = number
  default     = 100
}

variable "log_retention_days" {
  description = "Retention of the function and API access log groups, in days."
  type        = number
  default     = 90
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
