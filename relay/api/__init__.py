"""Management API for provider credentials, team API keys and the provider catalog."""
