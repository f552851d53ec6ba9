"""Tenants and their API keys: the records, and their storage in the tenants table."""
