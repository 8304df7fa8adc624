"""kopf handlers: thin adapters from events to the controller, scaler and Kubernetes edges.

Importing this package registers every handler with kopf's default registry.
"""

from lmscale.handlers import drift, endpoints, indexes, lifecycle, operator, scaling  # noqa: F401
