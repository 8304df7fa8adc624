"""The resources the handlers watch, and the labels that mark lmscale's children."""

from lmscale.api.resource import GROUP, PLURAL, VERSION

LMD = (GROUP, VERSION, PLURAL)
DEPLOYMENT_LABEL = "lmscale.dev/deployment"
MANAGED = {"app.kubernetes.io/managed-by": "lmscale"}
