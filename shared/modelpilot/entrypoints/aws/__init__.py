"""AWS payloads → commands: S3 / EventBridge uploads, SageMaker registry events, CloudWatch alarms,
EventBridge Scheduler ticks, console invocations, the operator HTTP API, and the Lambda runtime
around them (:mod:`.runtime`: logging, metrics, tracing, the error policy)."""
