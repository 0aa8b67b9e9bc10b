import cv2
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


def test_photos_in_every_png_mode_a_studio_exports_decode_to_the_same_rgb():
    import cv2
    from PIL import Image

    rgb = _photo(channels=3)
    grey = rgb[:, :, 0]
    as_rgb = imageio.decode_png(png_bytes(rgb), 10_000)
    ok, sixteen = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR).astype(np.uint16) * 257)
    assert np.array_equal(imageio.decode_png(sixteen.tobytes(), 10_000), as_rgb), "16 bits round down to the same 8"
    assert np.array_equal(imageio.decode_png(png_bytes(grey), 10_000), np.dstack([grey] * 3))
    import io

    palette = io.BytesIO()
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(palette, "PNG")
    decoded = imageio.decode_png(palette.getvalue(), 10_000)
    expected = np.asarray(Image.open(io.BytesIO(palette.getvalue())).convert("RGB"))
    assert np.array_equal(decoded, expected), "each palette index becomes its colour"
    assert np.array_equal(imageio.decode_png(png_bytes(rgb) + b"\0" * 100 + b"trailing", 10_000), as_rgb), \
        "bytes after IEND are not a truncation"


def test_a_one_pixel_png_is_no_shot():
    with pytest.raises(imageio.BadImage, match="at least 32 px"):
        imageio.decode_png(png_bytes(np.zeros((1, 1, 3), np.uint8)), 10_000)


def test_a_cutout_without_transparency_is_refused():
    with pytest.raises(imageio.BadImage, match="RGB PNG; a cutout must be"):
        imageio.decode_png(png_bytes(_photo(channels=3)), 10_000, want="cutout")


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


def _jpeg(rgb, progressive=False):
    import cv2

    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, 95, cv2.IMWRITE_JPEG_PROGRESSIVE, int(progressive)])
    return buf.tobytes()


@pytest.mark.parametrize("progressive", [False, True])
def test_a_jpeg_under_a_png_key_is_a_photo_with_a_note(progressive):
    rgb = np.full((60, 40, 3), (200, 30, 90), np.uint8)
    data = _jpeg(rgb, progressive)
    assert imageio.jpeg_size(data) == (40, 60)
    decoded, note = imageio.decode_photo(data, 10_000)
    assert decoded.shape == (60, 40, 3) and np.abs(decoded.astype(int) - rgb).max() < 8
    assert "JPEG" in note
    png, none = imageio.decode_photo(png_bytes(rgb), 10_000)
    assert np.array_equal(png, rgb) and none is None


def test_a_jpeg_is_held_to_the_same_limits_before_decoding():
    with pytest.raises(imageio.BadImage, match="over the cap"):
        imageio.decode_photo(_jpeg(_photo(200, 100, 3)), 10_000)
    with pytest.raises(imageio.BadImage, match="at least 32 px"):
        imageio.decode_photo(_jpeg(_photo(20, 20, 3)), 10_000)
    with pytest.raises(imageio.BadImage, match="JPEG"):
        imageio.decode_photo(b"\xff\xd8\xff\xe0 this is a JPEG, not a PNG" * 10, 10_000)


def test_a_cutout_shows_the_garment_and_nothing_behind_it():
    rgb = np.random.default_rng(0).integers(1, 255, (30, 20, 3), dtype=np.uint8)
    mask = np.zeros((30, 20), np.uint8)
    mask[5:25, 5:15] = 255
    mask[4, 5:15] = 80  # a soft edge keeps its colour
    out = imageio.rgba_cutout(np.dstack([rgb, np.full((30, 20), 255, np.uint8)]), mask)
    assert out.shape == (30, 20, 4) and np.array_equal(out[:, :, 3], mask)
    assert np.array_equal(out[mask > 0, :3], rgb[mask > 0])
    assert not out[mask == 0].any(), "fully transparent pixels are transparent black"


def test_an_overlay_of_no_garment_is_the_photo():
    rgb = np.random.default_rng(0).integers(0, 255, (30, 20, 3), dtype=np.uint8)
    assert np.array_equal(imageio.overlay(rgb, np.zeros((30, 20), np.uint8)), rgb)


@pytest.mark.parametrize("shape", [(7, 5), (7, 5, 3), (7, 5, 4), (1, 9, 4), (40, 1)])
def test_png_encoding_round_trips_every_pixel_through_another_reader(shape):
    """The encoder's Up filter wraps modulo 256: random pixels (every difference occurs) decode,
    in libpng via OpenCV, to exactly what was written."""
    array = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    data = imageio.encode_png(array)
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if array.ndim == 3:
        decoded = cv2.cvtColor(decoded, cv2.COLOR_BGRA2RGBA if shape[2] == 4 else cv2.COLOR_BGR2RGB)
    assert np.array_equal(decoded, array)
    colour = "grey" if array.ndim == 2 else {3: "RGB", 4: "RGBA"}[shape[2]]
    assert imageio.png_header(data) == (shape[1], shape[0], 8, colour)


def test_png_encoding_refuses_what_png_cannot_hold_as_given():
    with pytest.raises(ValueError, match="uint8"):
        imageio.encode_png(np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match="uint8"):
        imageio.encode_png(np.zeros((4, 4, 2), np.uint8))


def test_bounds_are_the_first_and_last_rows_and_columns_with_a_true_pixel():
    """bounds scans with OpenCV; its answer is the definition's, on masks of every density,
    boolean or 0/255, contiguous or strided views, with margins clipped to the frame."""
    def definition(on, margin):
        rows, cols = np.flatnonzero(on.any(axis=1)), np.flatnonzero(on.any(axis=0))
        if rows.size == 0:
            return None
        h, w = on.shape
        return (slice(max(0, rows[0] - margin), min(h, rows[-1] + 1 + margin)),
                slice(max(0, cols[0] - margin), min(w, cols[-1] + 1 + margin)))

    rng = np.random.default_rng(0)
    for _ in range(500):
        h, w = rng.integers(1, 60, 2)
        on = rng.random((h, w)) < rng.choice([0, 0.001, 0.02, 0.5])
        margin = int(rng.integers(0, 5))
        for mask in (on, on.astype(np.uint8) * 255, on[::2, 1:], on.astype(np.uint8)[1:, ::3]):
            assert imageio.bounds(mask, margin) == definition(mask, margin)


BOMB = """
import re, sys, zlib, struct
from cutout import imageio


def high_water_mb():
    # This process's own peak (VmHWM starts afresh at exec; ru_maxrss keeps the forking parent's).
    return int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1)) / 1024

def chunk(tag, data):
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(tag)))

w = h = 6300  # 16-bit RGBA: 317 MB of pixels from a file of about 300 KB
# Compressed a row at a time: building it must not raise the peak the decode is measured by.
packer, row = zlib.compressobj(9), b"\\0" + bytes(w * 8)
raw = b"".join(packer.compress(row) for _ in range(h)) + packer.flush()
bomb = (imageio.PNG_SIGNATURE + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 6, 0, 0, 0))
        + chunk(b"IDAT", raw) + chunk(b"IEND", b""))
before = high_water_mb()
try:
    {call}
except imageio.BadImage as exc:
    print("refused:", exc)
print("peak MB", high_water_mb() - before)
"""


@pytest.mark.parametrize("call, refused, most_mb", [
    ("imageio.decode_reference(bomb, (1728, 1152), 50_000_000, need_alpha=True)", "the cutout is 6300x6300", 20),
    ("imageio.decode_png(bomb, 50_000_000, want='cutout')", None, None),  # the control: a full decode
])
def test_a_small_file_that_inflates_to_gigabytes_is_refused_from_its_header(call, refused, most_mb):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", BOMB.replace("{call}", call)], capture_output=True, text=True,
                         check=True, timeout=120).stdout
    peak = float(out.split("peak MB")[1])
    if refused:
        assert f"refused: {refused}" in out and peak < most_mb, out
    else:
        assert peak > 200, "the control decodes it in full: the measurement can see a decode"
