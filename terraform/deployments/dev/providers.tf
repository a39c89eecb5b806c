provider "aws" {
  region = var.region

  # The platform tags its resources itself; these catch any resource a module misses.
  default_tags {
    tags = {
      Project     = var.project
      Environment = var.environment
      ManagedBy   = "terraform"
    }
  }
}
