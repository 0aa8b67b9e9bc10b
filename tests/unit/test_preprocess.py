import numpy as np

from cutout.segmentation.preprocess import (Box, fit_image, fit_mask, focus_crop, focus_region, garment_box, normalise,
                                            unfit_probability)
from trainer.data import channel_stats


def test_squash_and_unfit_round_trip_shape():
    rgb = np.random.default_rng(0).integers(0, 255, (1728, 1152, 3), dtype=np.uint8)
    fitted, placement = fit_image(rgb, (96, 64), "squash")
    assert fitted.shape == (96, 64, 3)
    prob = np.full((96, 64), 0.7, np.float32)
    back = unfit_probability(prob, placement, rgb.shape[:2])
    assert back.shape == (1728, 1152) and np.allclose(back, 0.7, atol=1e-5)


def test_pad_keeps_aspect_and_fills_with_the_mean():
    rgb = np.zeros((100, 50, 3), np.uint8)  # 1:2, into a square
    fitted, placement = fit_image(rgb, (64, 64), "pad", fill=np.array([10, 20, 30]))
    assert (placement.height, placement.width) == (64, 32)
    assert tuple(fitted[0, 0]) == (10, 20, 30) and tuple(fitted[32, 32]) == (0, 0, 0)
    prob = np.zeros((64, 64), np.float32)
    prob[:, placement.left:placement.left + placement.width] = 1.0
    assert unfit_probability(prob, placement, (100, 50)).min() > 0.99  # padding is cropped away


def test_mask_fits_like_its_photo():
    mask = np.zeros((40, 20), np.uint8)
    mask[:, 10:] = 255
    fitted = fit_mask(mask, (20, 10), "squash")
    assert fitted.dtype == np.float32 and fitted.max() == 1.0 and fitted[:, :4].max() == 0.0
    padded = fit_mask(mask, (20, 20), "pad")  # 1:2 into a square: 10 px wide, centred
    assert padded.shape == (20, 20) and padded[:, :5].max() == 0.0 and padded[:, 15:].max() == 0.0
    assert padded[:, 10:15].min() == 1.0


def test_the_focus_region_is_the_mask_dilated_by_a_share_of_the_shorter_side():
    mask = np.zeros((100, 100), np.uint8)
    mask[40:60, 40:60] = 255
    region = focus_region(mask, 0.05)
    assert region[38, 50] == 1  # dilated by 5 px
    assert region[30, 50] == 0


def test_garment_box_has_the_inputs_aspect_and_holds_the_region():
    region = np.zeros((300, 200), np.uint8)
    region[100:140, 50:150] = 1  # wide: the box grows in height to 3:2
    box = garment_box(region, aspect=1.5)
    assert (box.bottom - box.top, box.right - box.left) == (150, 100)
    assert region[box.slices].sum() == region.sum()
    assert (box.top + box.bottom) // 2 == 120 and (box.left + box.right) // 2 == 100, "centred on the region"
    region[:] = 0
    region[0:10, 190:200] = 1  # in a corner: shifted inside the photo, not cut off
    box = garment_box(region, aspect=1.5)
    assert box.top == 0 and box.right == 200 and (box.bottom - box.top, box.right - box.left) == (15, 10)
    region[:] = 1  # the whole photo: as large as the photo allows
    assert garment_box(region, aspect=1.5) == Box(0, 0, 300, 200)
    assert garment_box(np.zeros((30, 20), np.uint8), 1.5) is None


def test_focus_crop_keeps_truth_aligned_and_blanks_the_rest():
    rgb = np.random.default_rng(0).integers(0, 255, (300, 200, 3), dtype=np.uint8)
    mask = np.zeros((300, 200), np.uint8)
    mask[100:180, 60:120] = 255
    crop, region, box = focus_crop(rgb, mask, 0.05, fill=[1, 2, 3], aspect=1.5)
    assert crop.shape[:2] == region.shape == (box.bottom - box.top, box.right - box.left)
    assert np.array_equal(crop[region == 1], rgb[box.slices][region == 1]), "the photo inside the focus, unmoved"
    assert (crop[region == 0] == [1, 2, 3]).all()
    assert mask[box.slices].sum() == mask.sum(), "the whole first mask and its 10 px margin are in the crop"
    assert region.sum() > (mask > 0).sum(), "dilated"
    assert focus_crop(rgb, np.zeros_like(mask), 0.05, fill=[1, 2, 3], aspect=1.5) is None


def test_normalise_and_channel_stats():
    images = [np.full((4, 4, 3), 10, np.uint8), np.full((4, 4, 3), 30, np.uint8)]
    mean, std = channel_stats(images)
    assert np.allclose(mean, 20) and np.allclose(std, 10)
    assert np.allclose(normalise(images[1], mean, std), 1.0)


def test_a_photo_is_normalised_bit_for_bit_as_the_arithmetic_does():
    photo = np.random.default_rng(0).integers(0, 256, (48, 32, 3), np.uint8)
    mean, std = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]
    expected = (photo.astype(np.float32) - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    got = normalise(photo, mean, std)
    assert got.dtype == np.float32 and np.array_equal(got, expected)
    assert np.array_equal(normalise(photo.astype(np.float32), mean, std), expected)


def test_dilation_in_the_masks_box_equals_the_whole_frames():
    """Only the mask's box grown by the radius is transformed; the result is exactly the
    whole frame's dilation, also for masks touching the border, and empty for none; and it
    differs from the exact Euclidean disk's only on its rim."""
    import cv2

    from cutout.segmentation.preprocess import dilate

    def whole_frame(mask, radius, kind=cv2.DIST_MASK_5):
        distance = cv2.distanceTransform((mask == 0).astype(np.uint8), cv2.DIST_L2, kind)
        return (distance <= radius).astype(np.uint8)

    rng = np.random.default_rng(0)
    for _ in range(12):
        mask = np.zeros((300, 200), np.uint8)
        for _ in range(int(rng.integers(1, 4))):
            centre = (int(rng.integers(-20, 220)), int(rng.integers(-20, 320)))
            cv2.ellipse(mask, centre, (int(rng.integers(2, 60)), int(rng.integers(2, 90))), 0, 0, 360, 1, -1)
        radius = int(rng.integers(1, 40))
        assert np.array_equal(dilate(mask, radius), whole_frame(mask, radius))
        exact = whole_frame(mask, radius, cv2.DIST_MASK_PRECISE)
        rim = cv2.dilate(exact, np.ones((3, 3), np.uint8)) - cv2.erode(exact, np.ones((3, 3), np.uint8))
        assert not ((dilate(mask, radius) != exact) & (rim == 0)).any(), "off the disk's rim"
    assert not dilate(np.zeros((30, 20), np.uint8), 5).any()
