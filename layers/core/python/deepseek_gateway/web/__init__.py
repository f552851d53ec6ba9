"""The HTTP surface: Powertools routers over the core services, and errors in OpenAI's shape."""
