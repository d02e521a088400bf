"""AWS adapters: S3, DynamoDB, EventBridge, SNS, SSM / Secrets Manager. boto3 is imported only here."""
