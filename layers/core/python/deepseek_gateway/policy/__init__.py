"""The policy engine: per-tenant Cedar policies deciding what a request may do before any provider call."""
