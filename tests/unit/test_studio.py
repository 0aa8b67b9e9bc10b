"""Studio-style composites: the truth stays on the garment through every transform, skin and
hair become plastic with their shading, the same seed makes the same image, and composites
of one photo never straddle the train/validation split."""

import cv2
import numpy as np
import pytest

from trainer.data import Pair, find_pairs, split
from trainer.studio import PLASTIC, Annotated, Carried, build, compose, plastic, read_ccp

RED = (220, 20, 20)


def person_photo(h=420, w=280) -> Annotated:
    """A street photo: grass-green surroundings, a person whose garment is pure red, skin tan."""
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[:] = (40, 160, 40)
    person = np.zeros((h, w), bool)
    cv2.ellipse(person.view(np.uint8), (w // 2, 60), (30, 40), 0, 0, 360, 1, -1)  # head
    person[100:380, 70:210] = True  # torso and legs
    garment = np.zeros((h, w), bool)
    garment[110:300, 75:205] = True
    garment[300:360, 95:120] = True  # a narrow leg of the trousers, off centre (flip shows)
    rgb[person] = (200, 160, 130)
    rng = np.random.default_rng(0)
    shade = np.clip(rng.normal(1, 0.1, (h, w)), 0.7, 1.3)[:, :, None]
    rgb[person] = np.clip(rgb[person] * shade[person], 0, 255).astype(np.uint8)
    rgb[garment] = RED
    return Annotated("0042", rgb, person, garment, person & ~garment)


def is_red(image):
    r, g, b = (image[..., i].astype(int) for i in range(3))
    return (r > 150) & (g < 90) & (b < 90)


@pytest.mark.parametrize("seed", range(8))
def test_truth_stays_on_the_garment_through_every_transform(seed):
    image, truth, _ = compose(person_photo(), np.random.default_rng(seed), size=(432, 288))
    assert image.shape == (432, 288, 3) and truth.shape == (432, 288) and set(np.unique(truth)) <= {0, 255}
    kernel = np.ones((5, 5), np.uint8)
    inside = cv2.erode(truth, kernel) > 0
    outside = cv2.dilate(truth, kernel) == 0
    assert inside.sum() > 1000
    assert is_red(image)[inside].mean() > 0.99, "the garment is where the truth says"
    assert is_red(image)[outside].mean() < 0.001, "and nowhere else"


def test_flips_and_scales_move_the_truth_with_the_photo():
    centroids, heights = [], []
    for seed in range(12):
        _, truth, _ = compose(person_photo(), np.random.default_rng(seed), size=(432, 288))
        leg = truth[:, :] > 0
        ys, xs = np.nonzero(leg)
        lower = ys > np.percentile(ys, 90)  # the lowest tenth: the narrow trouser leg
        centroids.append(xs[lower].mean() - 144)
        heights.append(ys.max() - ys.min())
    assert min(centroids) < -5 and max(centroids) > 5, "mirrored in some, not in others"
    assert max(heights) / min(heights) > 1.08, "scaled differently"


@pytest.mark.parametrize("seed", range(8))
def test_negatives_are_the_persons_other_parts_aligned_with_the_photo(seed):
    photo = person_photo()
    image, truth, negatives = compose(photo, np.random.default_rng(seed), size=(432, 288))
    assert negatives.shape == truth.shape and set(np.unique(negatives)) <= {0, 255}
    assert not ((negatives > 0) & (truth > 0)).any(), "never garment"
    inside = cv2.erode(negatives, np.ones((5, 5), np.uint8)) > 0
    assert inside.sum() > 500
    # The tan skin (or its plastic) is where the negatives say: neither garment red nor grass.
    assert not is_red(image)[inside].any()
    # Same geometry as the truth: the head (negative) sits above the garment in every composite.
    assert np.nonzero(inside)[0].min() < np.nonzero(truth)[0].min()


BLUE = (20, 40, 230)


def blue_bag(relative_height=0.3) -> Carried:
    """A pure blue bag: a square with a handle cut out of its top."""
    alpha = np.ones((60, 50), bool)
    alpha[:15, 12:38] = False
    return Carried(np.full((60, 50, 3), BLUE, np.uint8), alpha, relative_height)


def is_blue(image):
    r, g, b = (image[..., i].astype(int) for i in range(3))
    return (b > 170) & (r < 90) & (g < 100)


@pytest.mark.parametrize("seed", range(8))
def test_a_carried_bag_hides_the_garment_and_joins_the_negatives(seed):
    image, truth, negatives = compose(person_photo(), np.random.default_rng(seed), size=(432, 288), bag=blue_bag())
    kernel = np.ones((5, 5), np.uint8)
    bag = is_blue(image)
    assert bag.sum() > 300, "the bag is in the frame"
    inside = cv2.erode(bag.view(np.uint8), kernel) > 0
    assert not (truth > 0)[inside].any(), "no truth under the bag"
    assert (negatives > 0)[inside].all(), "the bag is a negative"
    # The rest of the garment is still where the truth says.
    garment = cv2.erode(truth, kernel) > 0
    assert is_red(image)[garment].mean() > 0.99
    assert is_red(image)[cv2.dilate(truth, kernel) == 0].mean() < 0.001


def test_bags_are_cut_from_their_labels_at_their_wearers_scale():
    photo = person_photo()
    carried = np.zeros_like(photo.person)
    carried[200:260, 40:80] = True  # a bag beside the torso
    carried[10:12, 10:12] = True  # a speck: too small to be a bag
    bags = Carried.cut_from(Annotated(photo.id, photo.rgb, photo.person | carried, photo.garment, photo.body, carried))
    assert len(bags) == 1
    assert bags[0].alpha.shape == (60, 40) and bags[0].alpha.all()
    assert bags[0].relative_height == pytest.approx(60 / (380 - 10))
    assert Carried.cut_from(photo) == []


def test_the_same_seed_makes_the_same_composite():
    a = compose(person_photo(), np.random.default_rng([0, 42, 1]), size=(216, 144))
    b = compose(person_photo(), np.random.default_rng([0, 42, 1]), size=(216, 144))
    c = compose(person_photo(), np.random.default_rng([0, 42, 2]), size=(216, 144))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0])


def test_plastic_is_the_tone_with_the_shading_kept():
    photo = person_photo()
    out = plastic(photo.rgb, photo.body, PLASTIC["grey"], np.random.default_rng(1))
    assert np.array_equal(out[~photo.body], photo.rgb[~photo.body]), "only skin and hair change"
    before = photo.rgb[photo.body].astype(float).mean(1)
    after = out[photo.body].astype(float)
    assert np.corrcoef(before, after.mean(1))[0, 1] > 0.95, "shading kept"
    assert np.abs(after[:, 0] - after[:, 2]).max() < 12, "grey plastic, not tan skin"


def test_composites_of_one_photo_fall_on_one_side_of_the_split():
    pairs = [Pair(f"{i:04d}_{v}", None, None) for i in range(50) for v in ("street", "s0", "Front")]
    train, val = split(pairs, seed=0, val_fraction=0.2)
    assert len(val) == 10 * 3 and not {p.source for p in train} & {p.source for p in val}


def write_ccp(folder, ids, bag=True):
    """A CCP-like folder: each photo a person_photo, its labels with a bag beside the torso."""
    for d in ("images", "masks", "labels"):
        (folder / d).mkdir(parents=True)
    (folder / "labels.txt").write_text("\n".join(["null", "hair", "shirt", "skin", "bag"]) + "\n")
    photo = person_photo()
    labels = np.where(photo.garment, 2, np.where(photo.person, 3, 0)).astype(np.uint8)
    if bag:
        labels[220:280, 20:60] = 4
    for photo_id in ids:
        cv2.imwrite(str(folder / "images" / f"{photo_id}.jpg"), cv2.cvtColor(photo.rgb, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(folder / "masks" / f"{photo_id}.png"), np.where(labels == 2, 255, 0).astype(np.uint8))
        cv2.imwrite(str(folder / "labels" / f"{photo_id}.png"), labels)
    return folder


def test_studio_data_hangs_bags_from_training_photos_over_training_photos_only(tmp_path):
    from click.testing import CliRunner

    from cutout.cli import main
    from trainer.studio import photo_ids

    ccp = write_ccp(tmp_path / "ccp", [f"{i:04d}" for i in range(1, 11)])
    runner = CliRunner()
    common = ["--split", "all", "--size", "216x144"]
    plain = runner.invoke(main, ["studio-data", str(ccp), "--out", str(tmp_path / "plain"), *common])
    bags = runner.invoke(main, ["studio-data", str(ccp), "--out", str(tmp_path / "bags"), "--bags", "1", *common])
    assert plain.exit_code == 0 and bags.exit_code == 0, bags.output
    assert "8 bags from 8 training photos" in bags.output
    val = set(photo_ids(ccp, "val"))
    assert len(val) == 2
    for photo_id in (f"{i:04d}" for i in range(1, 11)):
        a, b = (cv2.imread(str(tmp_path / d / "images" / f"{photo_id}_s0.jpg")) for d in ("plain", "bags"))
        assert np.array_equal(a, b) == (photo_id in val), photo_id


def test_build_writes_a_labelled_folder_from_ccp_files(tmp_path):
    ccp = tmp_path / "ccp"
    for d in ("images", "masks", "labels"):
        (ccp / d).mkdir(parents=True)
    (ccp / "labels.txt").write_text("\n".join(["null", "hair", "shirt", "skin"]) + "\n")
    photo = person_photo()
    labels = np.where(photo.garment, 2, np.where(photo.person, 3, 0)).astype(np.uint8)
    cv2.imwrite(str(ccp / "images" / "0042.jpg"), cv2.cvtColor(photo.rgb, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(ccp / "masks" / "0042.png"), np.where(photo.garment, 255, 0).astype(np.uint8))
    cv2.imwrite(str(ccp / "labels" / "0042.png"), labels)
    read = read_ccp(ccp, "0042")
    assert np.array_equal(read.garment, photo.garment) and np.array_equal(read.body, photo.person & ~photo.garment)
    n = build(ccp, tmp_path / "out", ["0042"], size=(216, 144), views=("Front", "FrontRight", "Back"), street=True)
    assert n == 4
    names = sorted(p.name for p in (tmp_path / "out" / "images").iterdir())
    assert names == ["0042_Back.jpg", "0042_Front.jpg", "0042_FrontRight.jpg", "0042_street.jpg"]
    mask = cv2.imread(str(tmp_path / "out" / "masks" / "0042_Front.png"), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (216, 144) and mask.max() == 255
    for name in ("0042_Front", "0042_street"):
        negatives = cv2.imread(str(tmp_path / "out" / "negatives" / f"{name}.png"), cv2.IMREAD_UNCHANGED)
        truth = cv2.imread(str(tmp_path / "out" / "masks" / f"{name}.png"), cv2.IMREAD_UNCHANGED)
        assert negatives.shape == truth.shape and negatives.max() == 255 and not (negatives & truth).any()
    street = cv2.imread(str(tmp_path / "out" / "negatives" / "0042_street.png"), cv2.IMREAD_UNCHANGED) > 0
    assert np.array_equal(street, photo.person & ~photo.garment)
    pairs = {p.id: p for p in find_pairs(tmp_path / "out")}
    assert all(p.negatives is not None and p.negatives.stem == p.id for p in pairs.values())

    # Bags hang only over the photos they are given for; every other composite stays as it was.
    for name, bag_ids in (("bags", {"0042"}), ("none", {"0007"})):
        build(ccp, tmp_path / name, ["0042"], size=(216, 144), views=("Front",), bags=[blue_bag()], bag_share=1.0,
              bag_ids=bag_ids)
    read = {name: cv2.imread(str(tmp_path / name / "images" / "0042_Front.jpg")) for name in ("bags", "none", "out")}
    assert np.array_equal(read["none"], read["out"])
    assert not np.array_equal(read["bags"], read["out"])


def test_a_look_holds_the_sweep_the_light_and_the_mannequin_still():
    from trainer.studio import LOOKS

    look = LOOKS["charcoal"]
    photo = person_photo()
    corners = []
    for seed in range(4):
        image, truth, _ = compose(photo, np.random.default_rng(seed), size=(432, 288), look=look)
        assert is_red(image)[cv2.erode(truth, np.ones((5, 5), np.uint8)) > 0].mean() > 0.99, "the truth still holds"
        corners.append(image[:20, :20].reshape(-1, 3).mean(0))
    corners, expected = np.array(corners), np.array(look.sweep) * np.array(look.light)
    ratio = corners / expected  # the corners: the sweep, under the vignette
    assert (ratio > 0.55).all() and (ratio < 1.1).all(), "the charcoal sweep under warm light"
    assert (corners[:, 0] > corners[:, 2]).all(), "the light is warm: red over blue"
    # Without a look the sweep is drawn afresh and is mostly light paper.
    mixed = [compose(photo, np.random.default_rng(seed), size=(432, 288))[0][:20, :20].mean() for seed in range(8)]
    assert np.median(mixed) > 1.5 * corners.mean()
