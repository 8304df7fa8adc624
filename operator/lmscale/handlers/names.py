"""The resources the handlers watch, and the labels that mark lmscale's children."""

from lmscale.api.resource import GROUP, PLURAL, VERSION

LMD = (GROUP, VERSION, PLURAL)
DEPLOYMENT_LABEL = "lmscale.dev/deployment"
VARIANT_LABEL = "lmscale.dev/variant"
MANAGED = {"app.kubernetes.io/managed-by": "lmscale"}
# What the watches of children and pods ask the apiserver for (server-side filtering):
# only objects lmscale rendered reach the operator at all.
CHILD_SELECTOR = "app.kubernetes.io/managed-by=lmscale,lmscale.dev/deployment"
