"""DeepSeek Gateway core library: the logic of every layer, free of Lambda event types."""
