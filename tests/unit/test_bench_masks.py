"""bench/mask_agreement.py's comparison: the check that a faster path cuts the same masks."""

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def _masks(folder: Path, shift: int) -> None:
    folder.mkdir(parents=True)
    for name in ("a_Front", "a_Back"):
        mask = np.zeros((60, 40), np.uint8)
        mask[10:50, 10 + shift:30 + shift] = 255
        cv2.imwrite(str(folder / f"{name}.png"), mask)


def test_identical_masks_agree_and_a_shifted_one_is_named(tmp_path):
    _masks(tmp_path / "old", 0)
    _masks(tmp_path / "same", 0)
    _masks(tmp_path / "moved", 2)
    cv2.imwrite(str(tmp_path / "moved" / "a_Front.png"), cv2.imread(str(tmp_path / "old" / "a_Front.png")))

    def compare(new):
        run = subprocess.run([sys.executable, str(ROOT / "bench" / "mask_agreement.py"), "compare",
                              str(tmp_path / "old"), str(tmp_path / new)], capture_output=True, text=True, check=True)
        return run.stdout

    assert "min 1.00000; 2 of 2 at >= 0.998" in compare("same")
    moved = compare("moved")
    assert "1 of 2 at >= 0.998" in moved and "least alike: a_Back 0.90000" in moved
