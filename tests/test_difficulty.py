"""Difficulty as a measured quantity: the SNR the simulator sets is the SNR it reports, per class too."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from particles import PARTICLE_NAMES, VOXEL_SPACING, particle
from simulation.dataset import DIFFICULTY_REPORT
from tests.training_fixtures import fixed_imaging
from simulation.difficulty import (DIFFICULTY_LEVELS, ImagingConfig, class_difficulty,
                                   resolve_snr, snr_range)
from simulation.imaging import ImagingParams, ctf, reconstruct
from simulation.tomogram import simulate_run

REPO = Path(__file__).resolve().parents[1]


def test_class_difficulty_known_answer():
    signal = np.zeros((4, 4, 4), np.float32)
    labels = np.zeros((4, 4, 4), np.uint8)
    ribosome, apo = particle("ribosome").label, particle("apo-ferritin").label
    labels[0], signal[0] = ribosome, -2.0  # 16 voxels at -2
    labels[1, :2], signal[1, :2] = apo, 1.0  # 8 voxels at +1
    report = class_difficulty(signal, 4.0, labels)
    assert set(report) == {"ribosome", "apo-ferritin"}  # absent classes are left out
    assert report["ribosome"] == {"snr": 0.25, "snr_db": pytest.approx(-6.0206), "cnr": -0.5, "voxels": 16}
    assert report["apo-ferritin"]["snr"] == pytest.approx(1 / 16) and report["apo-ferritin"]["cnr"] == 0.25
    assert math.isinf(class_difficulty(signal, 0.0, labels)["ribosome"]["snr"])


@pytest.mark.parametrize("snr", [0.05, 1.0])
def test_reconstruct_sets_the_asked_snr(snr: float):
    rng = np.random.default_rng(0)
    potential = np.zeros((24, 40, 40), np.float32)
    potential[8:16, 12:24, 12:24] = 1.0  # one block of "protein"
    mask = potential > 0
    params = ImagingParams(snr=snr)
    noisy = reconstruct(potential, rng, params, VOXEL_SPACING, mask, ("denoised", "wbp"))
    clean = reconstruct(potential, rng, ImagingParams(snr=math.inf), VOXEL_SPACING, mask, ("denoised",))
    np.testing.assert_allclose(noisy.signal, clean.volumes["denoised"], atol=1e-6)
    noise = noisy.volumes["denoised"] - noisy.signal
    assert noise.std() == pytest.approx(noisy.noise_std, rel=1e-3)
    measured = np.mean(noisy.signal[mask].astype(np.float64) ** 2) / noise.var()
    assert measured == pytest.approx(snr, rel=1e-3)
    assert noisy.volumes["wbp"].std() > noisy.volumes["denoised"].std()  # no low-pass: noisier


def test_phase_flip_keeps_protein_dark_at_every_frequency():
    k2 = np.linspace(0, 1 / 20.0 ** 2, 200, dtype=np.float32)
    raw = ctf(k2, 40_000.0, bfactor=0.0)
    flipped = ctf(k2, 40_000.0, bfactor=0.0, phase_flip=True)
    assert raw.min() < 0 < raw.max()  # a 4 µm CTF changes sign before 20 Å
    np.testing.assert_allclose(flipped, np.abs(raw), atol=1e-7)


def test_levels_resolve_and_bad_levels_are_clear():
    assert resolve_snr("realistic") == DIFFICULTY_LEVELS["realistic"]
    assert DIFFICULTY_LEVELS["easy"] > DIFFICULTY_LEVELS["realistic"] > DIFFICULTY_LEVELS["hard"]
    assert resolve_snr("0.2") == resolve_snr(0.2) == 0.2 and math.isinf(resolve_snr("inf"))
    for bad in ("medium", "0", "-1"):
        with pytest.raises(ValueError, match="difficulty"):
            resolve_snr(bad)
    with pytest.raises(ValueError, match="defocus_um"):
        ImagingConfig(defocus_um=(5.0, 2.0))


def test_snr_range_is_log_uniform_between_its_ends():
    snr, spread = snr_range("1:8")
    assert snr == pytest.approx(math.sqrt(8)) and spread == pytest.approx(math.log(8) / 2)
    assert snr_range("hard:easy") == pytest.approx((2.0, math.log(16) / 2))
    assert snr_range("2") is None and snr_range("realistic") is None
    draws = [ImagingConfig(snr=snr, snr_spread=spread).draw(np.random.default_rng(i)).snr for i in range(400)]
    assert 1.0 <= min(draws) < 1.3 and 6.2 < max(draws) <= 8.0
    assert 0.4 < np.mean(np.log(draws) < math.log(snr)) < 0.6  # as many runs below the geometric mean as above
    for bad in ("8:1", "1:2:3", "1:inf", "0:2", "x:2"):
        with pytest.raises(ValueError, match="difficulty"):
            snr_range(bad)


def test_imaging_is_drawn_per_run_within_its_ranges():
    cfg = ImagingConfig(snr=0.3, snr_spread=0.2)
    draws = [cfg.draw(np.random.default_rng(i)) for i in range(200)]
    assert all(0.3 * math.exp(-0.2) <= d.snr <= 0.3 * math.exp(0.2) for d in draws)
    assert all(2e4 <= d.defocus <= 5e4 and 55 <= d.max_tilt_deg <= 65 for d in draws)
    assert 0.3 < np.mean([d.phase_flip for d in draws]) < 0.7
    fixed = {fixed_imaging(0.3).draw(np.random.default_rng(i)) for i in range(5)}
    assert len(fixed) == 1 and next(iter(fixed)).snr == 0.3


def test_harder_level_has_more_noise_same_particles():
    runs = [simulate_run((32, 96, 96), np.random.default_rng(3), fixed_imaging(resolve_snr(level)))
            for level in ("easy", "hard")]
    assert runs[0].picks.equals(runs[1].picks)  # same seed, same placement: only the noise differs
    assert runs[1].noise_std > 2 * runs[0].noise_std
    for name, easy in runs[0].difficulty.items():
        assert runs[1].difficulty[name]["snr"] == pytest.approx(
            easy["snr"] * DIFFICULTY_LEVELS["hard"] / DIFFICULTY_LEVELS["easy"], rel=1e-3)


def test_dataset_reports_every_run(tiny_dataset: Path):
    report = json.loads((tiny_dataset / DIFFICULTY_REPORT).read_text())
    assert report["difficulty"] == DIFFICULTY_LEVELS["realistic"]  # the default level
    assert [r["split"] for r in report["runs"]].count("test") == 2 and len(report["runs"]) == 9
    for run in report["runs"]:
        assert run["noise_std"] > 0 and set(run["imaging"]) >= {"snr", "defocus", "phase_flip", "max_tilt_deg"}
        assert set(run["classes"]) <= set(PARTICLE_NAMES)
        assert all(c["snr"] > 0 and c["cnr"] < 0 for c in run["classes"].values())  # protein darker than ice
    assert report["models"] == {n: "built-in shape" for n in PARTICLE_NAMES}


def test_cli_difficulty_and_physics_flags(tmp_path: Path):
    out = tmp_path / "hard"
    cmd = [sys.executable, str(REPO / "simulate.py"), "--out", str(out), "--size", "16,48,48", "--n-test", "0",
           "--difficulty", "hard", "--phase-flip-prob", "0", "--defocus-um", "3", "3"]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    runs = json.loads((out / DIFFICULTY_REPORT).read_text())["runs"]
    assert all(not r["imaging"]["phase_flip"] and r["imaging"]["defocus"] == 30_000.0 for r in runs)
    bad = subprocess.run(cmd[:3] + [str(tmp_path / "x"), "--difficulty", "medium"], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "difficulty 'medium'" in bad.stderr
    helped = subprocess.run([sys.executable, str(REPO / "simulate.py"), "--help"], cwd=REPO, capture_output=True,
                            text=True, timeout=120)
    assert "--phase-flip-prob" in helped.stdout and "by phase flipping" in " ".join(helped.stdout.split())
