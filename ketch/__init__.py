"""Ketch: a Kubernetes-style orchestrator with its own container runtime."""
