# CloudWatch alarms on SQS queues: one per entry of `alarms`, notifying `alarm_actions`
# when it fires and when it clears. A queue without messages publishes no datapoints,
# so missing data is "not breaching".
resource "aws_cloudwatch_metric_alarm" "this" {
  for_each = var.alarms

  alarm_name          = each.key
  alarm_description   = each.value.description
  namespace           = "AWS/SQS"
  metric_name         = each.value.metric
  dimensions          = { QueueName = each.value.queue_name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = each.value.evaluation_periods
  comparison_operator = "GreaterThanThreshold"
  threshold           = each.value.threshold
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  tags                = var.tags
}
