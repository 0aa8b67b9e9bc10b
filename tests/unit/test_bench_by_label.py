"""bench/by_label.py: the validation garments' right share by what the person wears."""

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def test_labels_are_ranked_by_the_share_of_their_garments_right_on_every_view(tmp_path):
    ccp = tmp_path / "ccp"
    (ccp / "labels").mkdir(parents=True)
    (ccp / "labels.txt").write_text("null\nskin\nscarf\nshirt\n")
    for photo_id, worn in (("0001", [1, 3]), ("0002", [1, 2, 3]), ("0003", [1, 2])):
        labels = np.zeros((40, 30), np.uint8)
        for i, label in enumerate(worn):
            labels[i * 10:i * 10 + 10] = label  # 300 pixels each: counted at --min-pixels 300
        cv2.imwrite(str(ccp / "labels" / f"{photo_id}.png"), labels)
    views = tmp_path / "views.csv"
    # 0002's Back view is the bad one: a garment is right only when every view is.
    views.write_text("id,garment,dice\n0001_Front,0001,0.97\n0001_Back,0001,0.96\n"
                     "0002_Front,0002,0.98\n0002_Back,0002,0.90\n0003_Front,0003,0.96\n")
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "by_label.py"), str(views), "--ccp", str(ccp)],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[0] == "3 garments, 66.7% right on every view"
    rows = [line.split() for line in out[2:]]
    # Background (null) shows on every photo, like skin; ties go by name.
    assert [r[0] for r in rows] == ["scarf", "shirt", "null", "skin"]
    assert rows[0][1:] == rows[1][1:] == ["2", "50.0%", "0.9300"]
    assert rows[2][1:] == rows[3][1:] == ["3", "66.7%", "0.9400"]
