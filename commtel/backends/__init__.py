"""commtel.backends."""
