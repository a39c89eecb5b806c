# The core modules used to be called from here directly; these keep an existing state's
# resources (tables, user pool, buckets) in place under the platform module instead of
# destroying and recreating them. Plugin addresses did not change.
moved {
  from = module.distribution
  to   = module.platform.module.distribution
}

moved {
  from = module.items
  to   = module.platform.module.items
}

moved {
  from = module.schedulers
  to   = module.platform.module.schedulers
}

moved {
  from = module.web
  to   = module.platform.module.web
}

moved {
  from = aws_cognito_user.admin
  to   = module.platform.aws_cognito_user.admin
}
