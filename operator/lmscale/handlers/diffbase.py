"""kopf's last-handled spec, written in the reconciler's own status apply.

kopf stores what it last handled (its diff-base) in a patch of its own after the handler
returns: a second write to a new resource a moment after the reconciler's status, and a
second watch event for every operator to decode. The reconciler writes the same value in
its status apply, and kopf's patch of it is skipped when it would write that value again.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, cast

import kopf

FIELD = "status.kopf.lastHandledConfiguration"


class ReconcilerDiffBase(kopf.StatusDiffBaseStorage):
    """kopf's `StatusDiffBaseStorage` that leaves out a value the reconciler just wrote.

    Until the reconciler's write comes back in a watch event, an event of the same
    generation that predates it (a scaler write queued meanwhile) reads as handled: kopf
    waits for its own patches so, and would otherwise run the handler again.
    """

    def __init__(self) -> None:
        super().__init__(field=FIELD)
        # uid -> (generation, what the reconciler wrote), until that write is seen
        self._written: dict[str, tuple[int, str]] = {}

    def build(self, *, body: kopf.Body,
              extra_fields: Iterable[kopf.FieldSpec] | None = None) -> kopf.BodyEssence:
        """kopf's essence, without first deep-copying what it drops at once (status, and the
        metadata but labels and annotations): it builds one for every event of every
        resource, and the status is most of a resource."""
        extra = [f if isinstance(f, str) else ".".join(f or ()) for f in extra_fields or ()]
        lean = {k: v for k, v in body.items()
                if k != "status" or any(f.startswith("status") for f in extra)}
        meta = body.get("metadata") or {}
        lean["metadata"] = {k: meta[k] for k in ("labels", "annotations") if k in meta}
        return super().build(body=kopf.Body(cast(kopf.RawBody, lean)), extra_fields=extra_fields)

    def encoded(self, body: Mapping[str, Any]) -> str:
        """The diff-base of `body` as kopf stores it (the spec and user metadata, as JSON)."""
        essence = self.build(body=kopf.Body(cast(kopf.RawBody, dict(body))), extra_fields=["spec"])
        return _json(essence)

    def written(self, body: Mapping[str, Any], encoded: str) -> None:
        """The reconciler applied `encoded` for the generation of `body`."""
        meta = body["metadata"]
        self._written[str(meta.get("uid"))] = (int(meta.get("generation") or 0), encoded)

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        stored = super().fetch(body=body)
        uid = str(body.metadata.uid)
        mine = self._written.get(uid)
        if mine is None:
            return stored
        if stored is not None and _json(stored) == mine[1]:
            del self._written[uid]  # the write is back: kopf's own record says it
            return stored
        if int(body.metadata.get("generation") or 0) == mine[0]:
            return cast(kopf.BodyEssence, json.loads(mine[1]))  # an event from before it
        del self._written[uid]  # a newer spec: kopf's cause detection as usual
        return stored

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        mine = self._written.get(str(body.metadata.uid))
        if mine is not None and mine[1] == _json(essence):
            return
        super().store(body=body, patch=patch, essence=essence)


def _json(essence: Any) -> str:
    return json.dumps(essence, separators=(",", ":"))


STORAGE = ReconcilerDiffBase()
