"""Command-line helpers: the embedded runner and the throwaway test services."""
