import numpy as np
import pytest

from cutout import imageio
from tests.helpers import png_bytes


def _photo(h=60, w=40, channels=4):
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (h, w, channels), dtype=np.uint8)


def test_rgba_photo_decodes_to_rgb_in_order():
    rgba = _photo()
    rgb = imageio.decode_png(png_bytes(rgba), 10_000)
    assert rgb.shape == (60, 40, 3)
    assert np.array_equal(rgb, rgba[:, :, :3])


@pytest.mark.parametrize("data, reason", [
    (b"", "empty object"),
    (b"GIF89a not a png at all", "not a PNG"),
    (b"\x89PNG\r\n\x1a\n", "truncated"),
])
def test_garbage_is_refused_with_a_reason(data, reason):
    with pytest.raises(imageio.BadImage, match=reason):
        imageio.decode_png(data, 10_000)


def test_truncated_png_is_refused():
    data = png_bytes(_photo())
    with pytest.raises(imageio.BadImage, match="truncated"):
        imageio.decode_png(data[: len(data) // 2], 10_000)


def test_pixel_cap_is_checked_before_decoding():
    with pytest.raises(imageio.BadImage, match="over the cap"):
        imageio.decode_png(png_bytes(_photo(200, 100)), 10_000)


def test_grey_photo_is_the_wrong_mode():
    with pytest.raises(imageio.BadImage, match="grey PNG"):
        imageio.decode_png(png_bytes(np.zeros((10, 10), np.uint8)), 10_000)


def test_sixteen_bit_is_refused():
    import cv2

    ok, buf = cv2.imencode(".png", np.zeros((10, 10, 3), np.uint16))
    with pytest.raises(imageio.BadImage, match="16-bit"):
        imageio.decode_png(buf.tobytes(), 10_000)


def test_cutout_alpha_and_mask_file_agree(tmp_path):
    """The studio's RGBA cutout and a plain mask PNG give the same truth."""
    import cv2

    rgb = _photo(channels=3)
    mask = np.zeros((60, 40), np.uint8)
    mask[10:50, 5:30] = 255
    (tmp_path / "cutout.png").write_bytes(png_bytes(imageio.rgba_cutout(rgb, mask)))
    cv2.imwrite(str(tmp_path / "mask.png"), mask)
    from_alpha = imageio.read_mask_file(tmp_path / "cutout.png")
    from_mask = imageio.read_mask_file(tmp_path / "mask.png")
    assert np.array_equal(from_alpha, from_mask)
    assert np.array_equal(imageio.decode_png(png_bytes(imageio.rgba_cutout(rgb, mask)), 10_000, want="cutout"), mask)


def test_overlay_keeps_size_and_tints_the_garment():
    rgb = np.full((30, 20, 3), 100, np.uint8)
    mask = np.zeros((30, 20), np.uint8)
    mask[5:25, 5:15] = 255
    out = imageio.overlay(rgb, mask)
    assert out.shape == rgb.shape
    assert out[15, 10, 1] > out[15, 10, 0]  # green inside
    assert tuple(out[0, 0]) == (100, 100, 100)  # untouched outside
