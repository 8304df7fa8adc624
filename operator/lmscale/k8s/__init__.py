"""The Kubernetes edge: every call lmscale makes to the API server goes through here."""
