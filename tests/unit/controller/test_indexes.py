"""The handlers' indexes: one record per object under its key, moved and dropped by events."""

from lmscale.handlers.indexes import Index


def test_records_follow_their_objects_and_the_newest_comes_last() -> None:
    index: Index[tuple[str, str], str] = Index()
    index.put("u1", ("ns", "chat"), "old chat")
    index.put("u2", ("ns", "chat"), "new chat")  # deleted and created again under its name
    index.put("u1", ("ns", "chat"), "old chat, updated")
    assert index[("ns", "chat")] == ("old chat, updated", "new chat")
    index.put("u2", ("ns", "code"), "moved")  # a pod relabelled to another resource
    assert index.snapshot() == {("ns", "chat"): ["old chat, updated"], ("ns", "code"): ["moved"]}
    index.drop("u1")
    index.drop("u1")  # a second DELETED is no error
    assert ("ns", "chat") not in index and index.get(("ns", "chat"), ()) == ()
    assert (len(index), index.objects(), list(index)) == (1, 1, [("ns", "code")])
