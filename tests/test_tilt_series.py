"""The second imaging family (a real-space tilt series): known answers for its geometry, the exact adjoint of
its projector, a missing wedge that comes from the tilt range, and noise set to the asked SNR."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.fft as sfft

from simulation.imaging import ImagingParams
from simulation.tilt_series import (backproject, exposure_order, project, projector, reconstruct_tilt_series,
                                    tilt_angles, weighted_backprojection)


def test_tilts_and_dose_symmetric_order() -> None:
    assert tilt_angles(60.0, 3.0).tolist() == [3.0 * k for k in range(-20, 21)]
    assert tilt_angles(7.0, 3.0).tolist() == [-6.0, -3.0, 0.0, 3.0, 6.0]
    assert exposure_order(np.array([-6.0, -3.0, 0.0, 3.0, 6.0])).tolist() == [4, 2, 0, 1, 3]


def test_a_voxel_lands_where_the_geometry_says() -> None:
    nz, ny, nx = 9, 2, 21
    volume = np.zeros((nz, ny, nx), np.float32)
    volume[2, :, 14] = 1.0  # z - zc = -2, x - xc = 4
    for angle in (0.0, 30.0, -45.0):
        u = 4 * math.cos(math.radians(angle)) - 2 * math.sin(math.radians(angle)) + 10
        projection = project(volume, projector(nz, nx, angle))  # [y, u]
        centre = (projection[0] * np.arange(nx)).sum() / projection[0].sum()
        assert centre == pytest.approx(u, abs=1e-6) and projection[0].sum() == pytest.approx(1.0)


def test_the_back_projector_is_the_exact_adjoint() -> None:
    rng = np.random.default_rng(0)
    v, w = rng.standard_normal((8, 3, 16)).astype(np.float32), rng.standard_normal((3, 16)).astype(np.float32)
    for angle in (0.0, 17.0, -58.0):
        matrix = projector(8, 16, angle)
        left = float((project(v, matrix).astype(np.float64) * w).sum())
        right = float((v.astype(np.float64) * backproject(w, matrix, v.shape)).sum())
        assert left == pytest.approx(right, rel=1e-5)


def _wbp(volume: np.ndarray, max_tilt: float, step: float) -> np.ndarray:
    """The reconstruction with a perfect microscope (no CTF, no noise)."""
    angles = tilt_angles(max_tilt, step)
    ones = [np.ones((volume.shape[1], volume.shape[2] // 2 + 1), np.float32)] * len(angles)
    params = ImagingParams(snr=math.inf, phase_flip=False)
    return weighted_backprojection(volume, params, None, ones, [projector(volume.shape[0], volume.shape[2], a)
                                                                for a in angles])


def test_a_blob_comes_back_and_the_wedge_is_where_the_tilts_are_not() -> None:
    z, y, x = np.meshgrid(np.arange(32), np.arange(4), np.arange(48), indexing="ij")
    blob = np.exp(-((z - 16) ** 2 + (x - 24) ** 2) / (2 * 3.0 ** 2)).astype(np.float32) + 0 * y
    full = _wbp(blob, 89.0, 1.0)
    assert np.corrcoef(full[:, 0].ravel(), blob[:, 0].ravel())[0, 1] > 0.95
    noise = np.random.default_rng(1).standard_normal((32, 4, 48)).astype(np.float32)
    power = np.abs(sfft.fftn(_wbp(noise, 40.0, 2.0)[:, 0])) ** 2  # [kz, kx]
    kz, kx = np.meshgrid(sfft.fftfreq(32), sfft.fftfreq(48), indexing="ij")
    angle = np.degrees(np.arctan2(np.abs(kz), np.abs(kx)))  # 90 at the kz axis
    ring = (np.hypot(kz, kx) > 0.1) & (np.hypot(kz, kx) < 0.4)
    inside, wedge = power[ring & (angle < 30)].mean(), power[ring & (angle > 60)].mean()
    assert wedge < 0.05 * inside  # tilts to ±40° measure nothing within 50° of the beam axis


@pytest.mark.parametrize("snr", [0.5, 2.0])
def test_the_noise_is_set_to_the_asked_snr(snr) -> None:
    z, y, x = np.meshgrid(np.arange(24), np.arange(40), np.arange(40), indexing="ij")
    ball = (((z - 12) ** 2 + (y - 20) ** 2 + (x - 20) ** 2) < 36).astype(np.float32)
    params = ImagingParams(snr=snr, defocus=20_000.0, tilt_step_deg=3.0, family="tilt-series")
    recon = reconstruct_tilt_series(ball, np.random.default_rng(0), params, 10.0, ball > 0, ("wbp", "denoised"))
    measured = float(np.mean(recon.signal[ball > 0] ** 2)) / recon.noise_std ** 2
    assert measured == pytest.approx(snr, rel=0.1)
    assert recon.volumes["denoised"].shape == ball.shape and recon.volumes["wbp"].std() > recon.noise_std
    assert recon.signal[ball > 0].mean() < recon.signal[ball == 0].mean()  # protein dark


def test_a_dataset_of_the_second_family(tmp_path) -> None:
    import json

    from simulation import simulate_dataset
    from simulation.difficulty import ImagingConfig

    root = simulate_dataset(tmp_path / "tilt", size=(24, 48, 48), seed=0, n_train=2, n_test=1,
                            imaging=ImagingConfig(family="tilt-series"))
    report = json.loads((root / "difficulty.json").read_text())
    assert {run["imaging"]["family"] for run in report["runs"]} == {"tilt-series"}
    with pytest.raises(ValueError, match="unknown imaging family 'radon'"):
        ImagingConfig(family="radon")


def test_each_family_has_its_own_calibrated_levels() -> None:
    from simulation.difficulty import resolve_snr, snr_range

    assert resolve_snr("realistic") == 2.0 and resolve_snr("realistic", "tilt-series") == 8.0
    assert resolve_snr(5.0, "tilt-series") == 5.0
    assert snr_range("hard:realistic", "tilt-series")[0] == pytest.approx(math.sqrt(3.0 * 8.0))
    with pytest.raises(ValueError, match="unknown imaging family 'radon'"):
        resolve_snr("hard", "radon")
