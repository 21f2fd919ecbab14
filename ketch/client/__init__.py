"""Clients of the Ketch (Kubernetes) API: kubeconfig handling and a small REST client."""
