# Web UI hosting: private S3 bucket behind CloudFront (origin access control) + config.json.
locals {
  content_types = {
    html  = "text/html; charset=utf-8"
    js    = "text/javascript; charset=utf-8"
    mjs   = "text/javascript; charset=utf-8"
    css   = "text/css; charset=utf-8"
    json  = "application/json"
    svg   = "image/svg+xml"
    png   = "image/png"
    ico   = "image/x-icon"
    woff2 = "font/woff2"
    txt   = "text/plain; charset=utf-8"
  }

  site_files = var.site_dir == null ? [] : [
    for f in fileset(var.site_dir, "**") : f if f != "config.json"
  ]

  ui_url = "https://${aws_cloudfront_distribution.this.domain_name}"
}

resource "aws_s3_bucket" "this" {
  #checkov:skip=CKV_AWS_18:The bucket only holds the public UI bundle served through CloudFront; access logging would log CloudFront's own reads.
  #checkov:skip=CKV_AWS_144:The UI bundle is rebuilt from the repository on every deploy; cross-region replication adds nothing.
  #checkov:skip=CKV_AWS_145:The bundle is public content; SSE-S3 is enough and keeps CloudFront OAC free of KMS grants.
  #checkov:skip=CKV2_AWS_62:Nothing reacts to uploads of the UI bundle.
  #checkov:skip=CKV2_AWS_61:Objects are replaced on deploy; versioning's noncurrent versions expire through the lifecycle rule below.
  bucket_prefix = "${var.name_prefix}-web-"
  force_destroy = var.force_destroy
  tags          = var.tags
}

resource "aws_s3_bucket_public_access_block" "this" {
  bucket                  = aws_s3_bucket.this.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_versioning" "this" {
  bucket = aws_s3_bucket.this.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    id     = "expire-old-versions"
    status = "Enabled"

    filter {}

    noncurrent_version_expiration {
      noncurrent_days = 30
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_cloudfront_origin_access_control" "this" {
  name                              = "${var.name_prefix}-web"
  origin_access_control_origin_type = "s3"
  signing_behavior                  = "always"
  signing_protocol                  = "sigv4"
}

resource "aws_cloudfront_response_headers_policy" "this" {
  name = "${var.name_prefix}-web-security"

  security_headers_config {
    content_type_options {
      override = true
    }

    frame_options {
      frame_option = "DENY"
      override     = true
    }

    referrer_policy {
      referrer_policy = "strict-origin-when-cross-origin"
      override        = true
    }

    strict_transport_security {
      access_control_max_age_sec = 31536000
      include_subdomains         = true
      preload                    = true
      override                   = true
    }
  }
}

data "aws_cloudfront_cache_policy" "optimized" {
  name = "Managed-CachingOptimized"
}

resource "aws_cloudfront_distribution" "this" {
  #checkov:skip=CKV_AWS_68:A WAF web ACL costs a monthly fee per deployment; the UI is static files and the API has its own throttling and JWT auth.
  #checkov:skip=CKV2_AWS_47:No WAF web ACL (see CKV_AWS_68); the origin serves static files only, nothing runs Log4j.
  #checkov:skip=CKV_AWS_86:Access logging needs a log bucket with ACLs; left to operators who want it.
  #checkov:skip=CKV_AWS_174:The default *.cloudfront.net certificate is used; its TLS policy is set by AWS. A custom domain sets minimum_protocol_version.
  #checkov:skip=CKV2_AWS_42:The default *.cloudfront.net certificate is used until an operator adds a custom domain.
  #checkov:skip=CKV_AWS_310:One S3 origin in the home region; an origin group needs a replicated bucket.
  #checkov:skip=CKV_AWS_374:The UI is served worldwide; no geo restriction.
  enabled             = true
  comment             = "${var.name_prefix} web UI"
  default_root_object = "index.html"
  price_class         = var.price_class
  http_version        = "http2and3"

  origin {
    domain_name              = aws_s3_bucket.this.bucket_regional_domain_name
    origin_id                = "ui"
    origin_access_control_id = aws_cloudfront_origin_access_control.this.id
  }

  default_cache_behavior {
    target_origin_id           = "ui"
    viewer_protocol_policy     = "redirect-to-https"
    allowed_methods            = ["GET", "HEAD"]
    cached_methods             = ["GET", "HEAD"]
    compress                   = true
    cache_policy_id            = data.aws_cloudfront_cache_policy.optimized.id
    response_headers_policy_id = aws_cloudfront_response_headers_policy.this.id
  }

  restrictions {
    geo_restriction {
      restriction_type = "none"
    }
  }

  viewer_certificate {
    cloudfront_default_certificate = true
  }

  tags = var.tags
}

data "aws_iam_policy_document" "bucket" {
  statement {
    sid       = "CloudFrontReads"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.this.arn}/*"]

    principals {
      type        = "Service"
      identifiers = ["cloudfront.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "AWS:SourceArn"
      values   = [aws_cloudfront_distribution.this.arn]
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.this.arn, "${aws_s3_bucket.this.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "this" {
  bucket = aws_s3_bucket.this.id
  policy = data.aws_iam_policy_document.bucket.json

  depends_on = [aws_s3_bucket_public_access_block.this]
}

resource "aws_s3_object" "site" {
  for_each = toset(local.site_files)

  bucket        = aws_s3_bucket.this.id
  key           = each.value
  source        = "${var.site_dir}/${each.value}"
  source_hash   = filemd5("${var.site_dir}/${each.value}")
  content_type  = lookup(local.content_types, reverse(split(".", each.value))[0], "application/octet-stream")
  cache_control = endswith(each.value, ".html") ? "no-cache" : "public, max-age=300"
}

resource "aws_s3_object" "config" {
  bucket        = aws_s3_bucket.this.id
  key           = "config.json"
  content_type  = "application/json"
  cache_control = "no-cache"

  content = jsonencode({
    api_url        = "${var.api_url}/api/v1"
    auth           = "cognito"
    cognito_domain = var.cognito_domain
    client_id      = var.user_pool_client_id
    redirect_uri   = "${local.ui_url}/"
  })
}
