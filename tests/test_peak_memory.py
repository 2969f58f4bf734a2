"""peak_rss_mb: a child's peak memory is its own, not its parent's."""
from __future__ import annotations

import json
import resource
import subprocess
import sys

import numpy as np

from clustering.peak_memory import peak_rss_mb


def test_a_child_of_a_large_parent_reports_its_own_peak() -> None:
    held = np.ones(300 * 2**20 // 8)  # the parent touches 300 MiB before starting the child
    child = ("import json, resource; from clustering.peak_memory import peak_rss_mb; "
             "print(json.dumps([peak_rss_mb(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024]))")
    own, inherited = json.loads(subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, check=True).stdout)
    assert held.sum() > 0 and peak_rss_mb() >= 300
    assert own < 200  # an interpreter with numpy imported, nowhere near the parent's 300 MiB
    assert inherited >= 300  # what the kernel's ru_maxrss says instead on Linux: the reason for VmHWM
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 >= peak_rss_mb() * 0.9


def test_stage_peaks_are_each_stages_own() -> None:
    from flows.stage_memory import StagePeaks, reset_peak

    assert reset_peak()  # Linux: the high-water mark can be started afresh
    peaks = StagePeaks()
    with peaks.stage("large"):
        held = np.ones(200 * 2**20 // 8)  # touches 200 MiB
        assert held.sum() > 0
        del held
    with peaks.stage("small"):
        pass
    assert list(peaks.mb) == ["large", "small"]
    assert peaks.mb["large"] - peaks.mb["small"] >= 150  # the second stage no longer carries the first one's peak


def test_a_process_trees_peak_is_its_largest_members_own() -> None:
    from bench.process_tree_memory import run_measuring_peak

    held = np.ones(300 * 2**20 // 8)  # the caller touches 300 MiB, which no process of the tree should carry
    grandchild = "import time, numpy; x = numpy.ones(150 * 2**20 // 8); time.sleep(1.0); print(x.sum())"
    child = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {grandchild!r}], check=True)"
    code, peak = run_measuring_peak([sys.executable, "-c", child], stdout=subprocess.DEVNULL)
    assert code == 0 and held.sum() > 0
    assert 150 <= peak < 250  # the grandchild's 150 MiB and its interpreter, not the caller's 300


def test_a_failing_command_reports_its_code() -> None:
    from bench.process_tree_memory import run_measuring_peak

    code, peak = run_measuring_peak([sys.executable, "-c", "raise SystemExit(3)"])
    assert code == 3 and peak is not None and peak > 0
