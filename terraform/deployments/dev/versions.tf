terraform {
  required_version = ">= 1.6"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.70, < 7.0"
    }
  }

  # Partial configuration: `terraform init -backend-config=backend.hcl` (see backend.hcl.example).
  backend "s3" {}
}
