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
