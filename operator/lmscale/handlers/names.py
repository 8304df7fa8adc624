"""The resources the handlers watch, and the labels that mark lmscale's children."""

from lmscale.api.resource import GROUP, PLURAL, VERSION
from lmscale.render.meta import DEPLOYMENT_LABEL, MANAGED_BY, VARIANT_LABEL

__all__ = ["CHILD_SELECTOR", "DEPLOYMENT_LABEL", "LMD", "MANAGED", "VARIANT_LABEL"]

LMD = (GROUP, VERSION, PLURAL)
MANAGED = {"app.kubernetes.io/managed-by": MANAGED_BY}
# What the watches of children and pods ask the apiserver for (server-side filtering):
# only objects lmscale rendered reach the operator at all.
CHILD_SELECTOR = f"app.kubernetes.io/managed-by={MANAGED_BY},{DEPLOYMENT_LABEL}"
