"""The reconciler's diff-base storage builds the essence kopf's own would, cheaper."""

import kopf

from lmscale.handlers.diffbase import FIELD, STORAGE

BODY = {
    "apiVersion": "lmscale.dev/v1alpha1", "kind": "LanguageModelDeployment",
    "metadata": {"name": "chat", "namespace": "team-a", "uid": "u", "generation": 3,
                 "resourceVersion": "42", "labels": {"team": "a"},
                 "annotations": {"note": "kept",
                                 "kubectl.kubernetes.io/last-applied-configuration": "{}"},
                 "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}]},
    "spec": {"model": "llama-3.1-8b", "slo": {"ttftP95Ms": 1000}},
    "status": {"observedGeneration": 3, "kopf": {"lastHandledConfiguration": "{}"},
               "scaling": {"loads": [[1.0, 2.0]]}, "progress": {"x": 1}},
}


def test_the_essence_is_kopfs_own_for_the_spec_and_for_a_status_field() -> None:
    reference = kopf.StatusDiffBaseStorage(field=FIELD)
    for extra in (["spec"], ["spec", "status.scaling"], [("status", "scaling")]):
        body = kopf.Body(BODY)  # type: ignore[arg-type]
        assert STORAGE.build(body=body, extra_fields=extra) == reference.build(
            body=body, extra_fields=extra)
    assert "status" not in STORAGE.build(body=kopf.Body(BODY), extra_fields=["spec"])  # type: ignore[arg-type]
