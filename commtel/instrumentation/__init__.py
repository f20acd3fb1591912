"""commtel.instrumentation."""
