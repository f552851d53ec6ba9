"""The DeepSeek Gateway CDK app: configuration, the stack, and one construct per concern."""
