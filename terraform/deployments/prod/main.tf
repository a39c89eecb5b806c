# One environment of Serverless Scheduler: the core platform and the enabled plugins.
# Everything both environments share lives in ../../modules/platform; what differs is in
# terraform.tfvars (and <env>.secret.tfvars).
module "platform" {
  source = "../../modules/platform"

  project               = var.project
  environment           = var.environment
  lambda_runtime        = var.lambda_runtime
  lambda_architecture   = var.lambda_architecture
  artifacts_dir         = var.artifacts_dir
  cognito_domain_prefix = var.cognito_domain_prefix
  extra_cors_origins    = var.extra_cors_origins
  log_retention_days    = var.log_retention_days
  deletion_protection   = var.deletion_protection
  admin_email           = var.admin_email
  alarm_actions         = var.alarm_actions
}

# -- plugins: one module block each ----------------------------------------------------
module "html_checker" {
  source = "../../modules/html_checker"

  platform     = module.platform.platform
  package_path = "${module.platform.artifacts_dir}/html_checker.zip"
  ses_identity = var.ses_identity
}

module "webhook" {
  source = "../../modules/webhook"

  platform     = module.platform.platform
  package_path = "${module.platform.artifacts_dir}/webhook.zip"
}
