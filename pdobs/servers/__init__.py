"""Launch and locate the real Prometheus and Alertmanager binaries (the demo and the tests use them)."""
