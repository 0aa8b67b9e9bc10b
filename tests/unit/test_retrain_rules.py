"""The retraining rules that need no services: the frozen holdout and the promotion margin."""

import pytest

from trainer.retrain import in_holdout, should_promote

# Buckets (sha256 of the UUID, first 8 hex digits, mod 100) worked out once and frozen here:
# if the hash or the rule ever changes, garments would move between holdout and training
# and every later comparison of models would be on different images.
BUCKETS = {
    "00000000-0000-4000-8000-000000000000": 96,
    "11111111-1111-4111-8111-111111111111": 25,
    "33333333-3333-4333-8333-333333333333": 29,
    "77777777-7777-4777-8777-777777777777": 5,
    "99999999-9999-4999-8999-999999999999": 68,
}


@pytest.mark.parametrize("garment, bucket", BUCKETS.items())
@pytest.mark.parametrize("percent", [0, 5, 6, 10, 26, 30, 97, 100])
def test_holdout_membership_is_frozen(garment, bucket, percent):
    assert in_holdout(garment, percent) == (bucket < percent)


def test_promotion_needs_a_strict_win():
    assert should_promote(0.95, 0.94, 0.001)
    assert not should_promote(0.9405, 0.94, 0.001)
    assert not should_promote(0.94, 0.94, 0.0)


def views(dice_by_garment: dict, confidence=0.5):
    """Holdout views as worker_dice reports them: three per garment at the garment's Dice, each
    garment's confidence `confidence` (or its Dice, when "dice")."""
    signals = {"height_fraction": 0.8, "garment_fraction": 0.3}
    return [{"garment": g, "predicted": d if confidence == "dice" else confidence, "dice": d, "signals": signals}
            for g, d in dice_by_garment.items() for _ in range(3)]


def test_promotion_refuses_a_better_mean_that_loses_garments():
    from trainer.retrain import promotion

    current = views({f"g{i}": 0.95 for i in range(20)})
    candidate = {**{f"g{i}": 0.99 for i in range(17)}, "g17": 0.90, "g18": 0.90, "g19": 0.90}  # mean up, 3 lost
    ok, figures = promotion(views(candidate, "dice"), current, 0.001, 0.05, 0.98)
    assert figures["mean_dice"]["candidate"] > figures["mean_dice"]["current"] + 0.001
    assert not ok and figures["worse"] == ["g17", "g18", "g19"] and figures["worse_share"] == 0.15
    assert figures["refused"][0] == "3 of 20 holdout garments got worse"
    # One garment lost (5 %: within the share allowed), one the current model got wrong too.
    current = views({**{f"g{i}": 0.95 for i in range(19)}, "g19": 0.94}, "dice")
    one_lost = {**{f"g{i}": 0.99 for i in range(19)}, "g19": 0.90}
    ok, figures = promotion(views(one_lost, "dice"), current, 0.001, 0.05, 0.98)
    assert ok and figures["worse"] == ["g19"] and figures["refused"] == []


def test_an_approved_reference_does_not_favour_the_model_it_was_copied_from():
    """Half the holdout's references are the current model's own approved cutouts: it scores 1
    there whatever the candidate does. The candidate is compared on the drawn ones, and on the
    approved ones only for whether it still has them right."""
    from trainer.retrain import promotion

    def marked(views_, approved):
        return [dict(v, approved=v["garment"] in approved) for v in views_]

    approved = {f"g{i}" for i in range(10)}
    current = marked(views({**{f"g{i}": 1.0 for i in range(10)}, **{f"g{i}": 0.90 for i in range(10, 20)}}, "dice"),
                     approved)
    candidate = marked(views({**{f"g{i}": 0.97 for i in range(10)}, **{f"g{i}": 0.94 for i in range(10, 20)}}, "dice"),
                       approved)
    ok, figures = promotion(candidate, current, 0.001, 0.05, 0.90)
    assert ok and figures["worse"] == [] and figures["compared_views"] == 30, figures
    assert figures["mean_dice"] == {"candidate": pytest.approx(0.94), "current": pytest.approx(0.90)}
    # Unmarked, the same figures refuse it: every approved garment "lost" 0.03 Dice.
    ok, figures = promotion(views(dict(zip([v["garment"] for v in candidate[::3]], [v["dice"] for v in candidate[::3]])),
                                  "dice"),
                            views(dict(zip([v["garment"] for v in current[::3]], [v["dice"] for v in current[::3]])),
                                  "dice"), 0.001, 0.05, 0.90)
    assert not ok and len(figures["worse"]) == 10
    # An approved view the candidate now gets wrong is a garment lost.
    candidate[0] = dict(candidate[0], dice=0.93)
    ok, figures = promotion(candidate, current, 0.001, 0.0, 0.90)
    assert not ok and figures["worse"] == ["g0"]


def test_promotion_refuses_a_candidate_that_would_release_less():
    from trainer.retrain import promotion

    current = views({f"g{i}": 0.97 for i in range(10)}, confidence=0.99)  # sure and right: all released
    candidate = views({f"g{i}": 0.98 for i in range(1, 10)}, confidence=0.9) + views({"g0": 0.94}, confidence=0.99)
    ok, figures = promotion(candidate, current, 0.001, 0.2, 0.98)  # its one lost garment is allowed here
    assert figures["mean_dice"]["candidate"] > figures["mean_dice"]["current"] + 0.001
    assert figures["released_at_target"] == {"candidate": 0.0, "current": 1.0}, "its surest garment is wrong"
    assert not ok and figures["refused"] == ["it would release 0.0% at 98% precision, the current model 100.0%"]


def test_a_candidate_carries_how_the_current_model_runs_and_is_judged(tiny_model, tmp_path):
    import shutil

    from cutout.segmentation import artefact
    from trainer.retrain import CARRIED, carry_tuning

    current, candidate = shutil.copytree(tiny_model, tmp_path / "current"), shutil.copytree(tiny_model, tmp_path / "new")
    meta = artefact.read_meta(current / "second")
    meta.tta, meta.threshold, meta.refine = True, 0.45, {"radius": 16, "eps": 1e-3}
    meta.calibration, meta.release = {"score": "expected_dice", "x": [0, 1], "y": [0, 1]}, {"min_predicted_dice": 0.97}
    artefact.write_meta(current / "second", meta)
    carry_tuning(current, candidate)
    carried = artefact.read_meta(candidate / "second")
    assert {name: getattr(carried, name) for name in CARRIED} == {name: getattr(meta, name) for name in CARRIED}
    assert set(CARRIED) == {"refine", "calibration", "release", "threshold", "tta"}
    assert carried.name == meta.name and artefact.read_meta(candidate / "first").tta is False, "only the last stage's"


def test_promotion_never_turns_a_releasing_studio_back_to_shadow_mode():
    from cutout.trust import Policy
    from trainer.retrain import promotion

    current = views({f"g{i:02d}": 0.955 if i < 36 else 0.93 for i in range(40)}, "dice")
    # Better on every garment, sure of its 36 best: its holdout alone earns releasing.
    earns = views({f"g{i:02d}": 0.99 - (0.0 if i < 36 else 0.05) for i in range(40)}, "dice")
    ok, figures = promotion(earns, current, 0.001, 0.5, 0.98, keep_releasing=Policy())
    assert ok and figures["earns_releasing"], figures["refused"]
    # As good on the mean, but only 20 holdout garments: it could not release by itself yet.
    few = views({f"g{i:02d}": 0.99 for i in range(20)}, "dice")
    ok, figures = promotion(few, current[:60], 0.001, 0.5, 0.98, keep_releasing=Policy())
    assert not ok and figures["refused"] == [
        "the current model releases on this studio; the candidate's 20 holdout garments do not earn releasing by themselves"]
    ok, _ = promotion(few, current[:60], 0.001, 0.5, 0.98)  # a model in shadow mode has nothing to keep
    assert ok


def test_a_promoted_models_rule_and_first_evidence_come_from_its_holdout(sqlite_url):
    from cutout.config import Settings
    from cutout.db import session_scope
    from cutout.schema import ModelVersion
    from trainer.retrain import promote_with_evidence

    dice = {f"g{k:02d}": (0.99 if k != 36 else 0.90) for k in range(40)}
    holdout = [dict(v, predicted=0.999 - 0.002 * int(v["garment"][1:])) for v in views(dice)]
    with session_scope(sqlite_url) as s:
        s.add(ModelVersion(version="new", location="/n", params={}, metrics={}, release_threshold=0.97))
        s.add(ModelVersion(version="small", location="/s", params={}, metrics={}, release_threshold=0.97))
    with session_scope(sqlite_url) as s:
        rule = promote_with_evidence(s, "new", holdout, Settings())
        kept = promote_with_evidence(s, "small", holdout[:60], Settings())  # 20 garments: too few
    with session_scope(sqlite_url) as s:
        new = s.query(ModelVersion).filter_by(version="new").one()
        small = s.query(ModelVersion).filter_by(version="small").one()
        assert rule["released"] == 36 and new.release_threshold == pytest.approx(0.999 - 0.002 * 35.5)
        assert len(new.params["holdout_garments"]) == 40
        # 36 right of 36 (Wilson lower bound 0.904): the holdout alone earns releasing.
        assert new.releasing and new.evidence["reviewed"] == 36 and new.evidence["right"] == 36
        assert kept["released"] == 0 and small.release_threshold == 0.97 and not small.releasing


def test_replay_data_enters_the_training_folder_beside_the_studios(tmp_path):
    from tests.helpers import write_labelled_folder
    from trainer.data import find_pairs, split
    from trainer.retrain import add_replay

    replay = write_labelled_folder(tmp_path / "shipped", 12)
    train = write_labelled_folder(tmp_path / "train", 4, truth="cutouts")  # the studio's corrections
    assert add_replay(train, replay, studio_pairs=4, ratio=2.0) == 8
    pairs = find_pairs(train)
    replayed = [p for p in pairs if p.id.startswith("replay-")]
    assert len(pairs) == 12 and len(replayed) == 8 and all(p.truth.resolve().parent == replay / "masks"
                                                             for p in replayed)
    assert {p.source for p in replayed}.isdisjoint({p.source for p in pairs if p not in replayed})
    train_part, val_part = split(pairs)
    assert train_part and val_part, "the split runs over studio and replayed pairs alike"
    again = write_labelled_folder(tmp_path / "again", 4, truth="cutouts")
    assert add_replay(again, replay, 4, 2.0) == 8 and sorted(p.name for p in (again / "images").iterdir()) == \
        sorted(p.name for p in (train / "images").iterdir()), "the same sample every time"
    assert add_replay(write_labelled_folder(tmp_path / "none", 2), None, 2, 1.0) == 0
