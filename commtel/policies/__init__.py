"""commtel.policies."""
