variable "name_prefix" {
  description = "Prefix of every resource name, e.g. scheduler-dev."
  type        = string
}

variable "site_dir" {
  description = "Directory of the built web UI to upload (every file under it); an absent directory uploads nothing."
  type        = string
  default     = null
}

variable "api_url" {
  description = "Base URL of the HTTP API."
  type        = string
}

variable "cognito_domain" {
  description = "Cognito hosted UI domain."
  type        = string
}

variable "user_pool_client_id" {
  description = "Cognito app client id of the web UI."
  type        = string
}

variable "price_class" {
  description = "CloudFront price class."
  type        = string
  default     = "PriceClass_100"
}

variable "force_destroy" {
  description = "Let terraform destroy delete the bucket with its objects (dev)."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
