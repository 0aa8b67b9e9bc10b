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


def test_threads_putting_one_key_in_a_folder_bucket_each_write_whole_files(tmp_path):
    """The worker puts from threads: each write goes through its own temporary file, so the key
    ends as one writer's bytes in full and no write fails for another's rename."""
    from concurrent.futures import ThreadPoolExecutor

    store = LocalStorage(tmp_path)
    payloads = [bytes([i]) * 200_000 for i in range(8)]
    with ThreadPoolExecutor(8) as pool:
        for _ in range(20):
            list(pool.map(lambda data: store.put("results/m/g_Front_mask.png", data, "image/png"), payloads))
            assert store.get("results/m/g_Front_mask.png") in payloads
    assert [p.name for p in (tmp_path / "results" / "m").iterdir()] == ["g_Front_mask.png"]
