import pytest

from cutout.naming import BadKey, parse_key, result_keys

GID = "0b9f8f9e-2d5c-4a55-9a1d-5f2b3c4d5e6f"


@pytest.mark.parametrize("view", ["Front", "FrontRight", "Back"])
def test_shot_and_cutout_keys_parse(view):
    shot = parse_key(f"shots/{GID}_{view}.png")
    assert (shot.kind, shot.garment_id, shot.view) == ("shot", GID, view)
    parsed = parse_key(f"cutouts/{GID.upper()}_{view}.png")
    assert (parsed.kind, parsed.garment_id, parsed.view) == ("cutout", GID, view)


@pytest.mark.parametrize("key, reason", [
    ("shots/not-a-uuid_Front.png", "not a UUID"),
    (f"shots/{GID}_Side.png", "view 'Side'"),
    (f"shots/{GID}_Front.jpg", ".jpg"),
    (f"shots/{GID}Front.png", "<garment-uuid>_<View>.png"),
    (f"shots/sub/{GID}_Front.png", "nested"),
    (f"elsewhere/{GID}_Front.png", "not under"),
])
def test_bad_keys_say_why(key, reason):
    with pytest.raises(BadKey, match=reason.replace(".", r"\.").replace("(", r"\(")):
        parse_key(key)


def test_result_keys_are_per_model_version():
    keys = result_keys("unet-abc", GID, "Back")
    assert keys["mask"] == f"results/unet-abc/{GID}_Back_mask.png"
    assert keys["overlay"].endswith("_overlay.jpg")
    assert len(set(keys.values())) == 4
