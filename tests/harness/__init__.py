"""Real servers for the tests: Redis, PostgreSQL, Prometheus, OTLP receivers."""
