import os
import subprocess
import sys

import pytest

# A shot's full-frame arrays, made and freed shot after shot; the page faults of the later shots.
SHOTS = """
import resource, sys
import numpy as np
from cutout.segmentation import runtime
if sys.argv[1] == "keep":
    assert runtime.keep_freed_memory()
def shots(n):
    for _ in range(n):
        maps = [np.ones((1728, 1152), np.float32) for _ in range(4)]
        del maps
shots(3)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
shots(5)
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 5)
"""


def _faults_a_shot(mode: str) -> float:
    run = subprocess.run([sys.executable, "-c", SHOTS, mode], capture_output=True, text=True, check=True)
    return float(run.stdout)


@pytest.mark.skipif(not hasattr(os, "confstr") or not os.confstr("CS_GNU_LIBC_VERSION"), reason="not glibc: nothing to tune")
def test_a_shots_freed_arrays_serve_the_next_shot_without_page_faults():
    assert _faults_a_shot("default") > 1000, "glibc hands 8 MB arrays back to the kernel by default"
    assert _faults_a_shot("keep") < 50
