# Non-secret settings of the prod environment (secrets go in prod.secret.tfvars).
environment           = "prod"
region                = "eu-central-1"
cognito_domain_prefix = "scheduler-prod-change-me"
extra_cors_origins    = []
log_retention_days    = 365
deletion_protection   = true
lambda_runtime        = "python3.11"
lambda_architecture   = "x86_64"
