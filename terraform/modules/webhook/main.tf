# Webhook plugin: a scheduled HTTP call; needs nothing beyond the plugin consumer.
module "consumer" {
  source = "../plugin_consumer"

  platform        = var.platform
  plugin_name     = "webhook"
  job_types       = ["webhook_job"]
  package_path    = var.package_path
  memory_size     = 256
  timeout         = 60
  max_concurrency = var.max_concurrency
}
