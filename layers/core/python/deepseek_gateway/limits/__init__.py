"""Exact rate limits, concurrency and budgets across all instances, and the usage records."""
