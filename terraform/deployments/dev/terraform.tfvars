# Non-secret settings of the dev environment (secrets go in dev.secret.tfvars).
environment           = "dev"
region                = "eu-central-1"
cognito_domain_prefix = "scheduler-dev-change-me"
extra_cors_origins    = ["http://localhost:8080", "http://127.0.0.1:8080"]
log_retention_days    = 14
deletion_protection   = false
lambda_runtime        = "python3.11"
lambda_architecture   = "x86_64"
