"""Kubernetes access shared by the gateway and the operator: configuration, requests, watches."""
