"""The folder bucket lists like S3 does: by key prefix, folder or not."""

from cutout.storage import LocalStorage


def test_listing_by_prefix(tmp_path):
    storage = LocalStorage(tmp_path / "bucket")
    for key in ("shots/a_Front.png", "shots/b_Back.png", "results/m/a_Front_mask.png"):
        storage.put(key, key.encode(), "image/png")
    keys = lambda prefix: sorted(o.key for o in storage.list(prefix))  # noqa: E731
    assert keys("shots/") == ["shots/a_Front.png", "shots/b_Back.png"]
    assert keys("shots/a") == ["shots/a_Front.png"], "a prefix inside a folder"
    assert keys("cutouts/") == [], "a folder that is not there holds nothing"
    assert keys("") == ["results/m/a_Front_mask.png", "shots/a_Front.png", "shots/b_Back.png"]
    (obj,) = storage.list("shots/b")
    assert obj.size == len(b"shots/b_Back.png") and len(obj.etag) == 32
