"""Authentication: API keys and OIDC tokens, resolved to one Principal shape."""
