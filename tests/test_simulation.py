"""Synthetic data generator: determinism, true picks, no overlaps, physics, zarr/copick layout, CLI."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import mrcfile
import numpy as np
import pytest
import scipy.fft as sfft
import zarr

from dataio import layout
from dataio.folds import load_folds
from dataio.layout import COPICK_CONFIG_NAME, TRAIN_RUNS, overlay_runs_dir, pick_file, tomogram_path, train_overlay_root
from particles import PARTICLE_NAMES, PARTICLES, VOXEL_SPACING, particle
from simulation import simulate_tomogram
from simulation.dataset import resolve_size, run_rng, simulated_test_runs
from tests.training_fixtures import fixed_imaging
from simulation.imaging import ImagingParams, ctf, frequency_grid, missing_wedge_mask, reconstruct
from simulation.placement import Placement, place_objects, sample_counts, sample_slab
from simulation.render import Slab, render_into
from simulation.shapes import BUILTIN_SHAPES, random_distractor, random_rotations
from simulation.templates import load_templates
from simulation.tomogram import build_objects, render_potential, simulate_run
from dataio.zarr_writer import write_multiscale_zarr
from tests.conftest import TINY_SHAPE

REPO = Path(__file__).resolve().parents[1]
SMALL = (32, 64, 64)
SOLID = ("beta-amylase", "beta-galactosidase", "ribosome", "thyroglobulin")
SHELLS = ("apo-ferritin", "virus-like-particle")


def _read_picks(overlay_root: Path, run: str) -> dict[str, np.ndarray]:
    out = {}
    for name in PARTICLE_NAMES:
        doc = json.loads(pick_file(overlay_root, run, name).read_text())
        assert doc["pickable_object_name"] == name and doc["run_name"] == run
        assert doc["user_id"] == "curation" and doc["unit"] == "angstrom"
        out[name] = np.array([[p["location"][a] for a in "xyz"] for p in doc["points"]]).reshape(-1, 3)
    return out


def _placement(shape=(64, 160, 160), seed=3) -> tuple[Placement, object]:
    rng = np.random.default_rng(seed)
    slab = sample_slab(shape, rng)
    counts = {name: 3 for name in PARTICLE_NAMES}
    models, names, labelled = build_objects(counts, {"protein": 6, "blob": 6, "gold": 2}, rng, None)
    return place_objects(shape, slab, models, names, labelled, rng), slab


def test_same_seed_same_bytes_different_seed_differs():
    vol_a, picks_a = simulate_tomogram(SMALL, np.random.default_rng(7))
    vol_b, picks_b = simulate_tomogram(SMALL, np.random.default_rng(7))
    vol_c, picks_c = simulate_tomogram(SMALL, np.random.default_rng(8))
    assert vol_a.dtype == np.float32 and vol_a.shape == SMALL
    assert vol_a.tobytes() == vol_b.tobytes()
    assert picks_a.equals(picks_b)
    assert not np.array_equal(vol_a, vol_c)
    assert list(picks_a.columns) == ["particle_type", "x", "y", "z"]


def test_runs_get_different_seeds():
    a = run_rng(0, "TS_5_4").integers(1 << 30, size=4)
    assert np.array_equal(a, run_rng(0, "TS_5_4").integers(1 << 30, size=4))
    assert not np.array_equal(a, run_rng(0, "TS_6_4").integers(1 << 30, size=4))
    assert not np.array_equal(a, run_rng(1, "TS_5_4").integers(1 << 30, size=4))


def test_written_picks_are_the_placed_centres(tiny_dataset: Path):
    for split, run in [("train", TRAIN_RUNS[0]), ("test", simulated_test_runs(2)[1])]:
        simulated = simulate_run(TINY_SHAPE, run_rng(0, run), tomo_types=())
        picks, placement = simulated.picks, simulated.placement
        overlay = train_overlay_root(tiny_dataset) if split == "train" else layout.truth_overlay_root(tiny_dataset)
        written = _read_picks(overlay, run)
        for name in PARTICLE_NAMES:
            expected = picks.loc[picks.particle_type == name, ["x", "y", "z"]].to_numpy()
            np.testing.assert_array_equal(written[name], expected)
        placed = placement.centres[placement.labelled][:, ::-1] * VOXEL_SPACING  # x, y, z Å
        np.testing.assert_allclose(np.sort(np.concatenate(list(written.values())), axis=0),
                                   np.sort(placed, axis=0), atol=1e-9)


def test_distractors_are_placed_but_never_picked():
    simulated = simulate_run((48, 128, 128), np.random.default_rng(2), tomo_types=())
    picks, placement = simulated.picks, simulated.placement
    assert simulated.volumes == {}
    assert (~placement.labelled).sum() > 0
    assert all(n.startswith("distractor") for n, lab in zip(placement.names, placement.labelled) if not lab)
    assert len(picks) == placement.labelled.sum()
    assert set(picks.particle_type) <= set(PARTICLE_NAMES)


@pytest.mark.parametrize("name", PARTICLE_NAMES)
def test_density_centre_of_mass_is_the_pick(name: str):
    rng = np.random.default_rng(11)
    vol = np.zeros((44, 44, 44), dtype=np.float32)
    centre = np.array([21.37, 22.81, 21.55])
    render_into(vol, BUILTIN_SHAPES[name], centre, random_rotations(1, rng)[0], VOXEL_SPACING)
    idx = np.indices(vol.shape).reshape(3, -1)
    com = (idx * vol.reshape(-1)).sum(axis=1) / vol.sum()
    assert np.abs(com - centre).max() < 0.15
    at_centre = vol[tuple(np.rint(centre).astype(int))]
    assert at_centre < 0.05 if name in SHELLS else at_centre > 0.9
    assert vol.max() > 0.9


def test_no_two_objects_overlap():
    placement, _ = _placement()
    assert placement.labelled.sum() >= 12 and (~placement.labelled).sum() >= 6
    xyz = placement.centres * VOXEL_SPACING
    dist = np.linalg.norm(xyz[:, None] - xyz[None], axis=-1)
    need = placement.radii[:, None] + placement.radii[None]
    off = ~np.eye(len(xyz), dtype=bool)
    assert np.all(dist[off] >= need[off])
    czii = np.array([particle(n).radius if lab else 0.0 for n, lab in zip(placement.names, placement.labelled)])
    assert np.all(dist[off] >= (czii[:, None] + czii[None])[off])


def test_particles_sit_in_the_ice_and_volume():
    placement, slab = _placement()
    z, y, x = placement.centres.T
    bottom, top = slab.surfaces(y, x)
    assert np.all((z >= bottom) & (z <= top))
    assert np.all((placement.centres >= 0) & (placement.centres <= np.array([63, 159, 159])))


def test_counts_realistic_and_varied():
    totals, mixes = [], []
    for seed in range(40):
        counts = sample_counts(np.random.default_rng(seed), 1.0)
        totals.append(sum(counts.values()))
        mixes.append([counts[n] for n in PARTICLE_NAMES])
    assert 135 <= min(totals) and max(totals) <= 230 and len(set(totals)) > 10
    share = np.sum(mixes, axis=0) / np.sum(mixes)
    real = np.array([375, 87, 112, 331, 251, 113]) / 1269
    np.testing.assert_allclose(share, real, atol=0.04)


def test_protein_darker_than_ice():
    rng = np.random.default_rng(4)
    simulated = simulate_run((48, 128, 128), rng, fixed_imaging(math.inf))
    vol, placement = simulated.volumes["denoised"], simulated.placement
    solid = placement.centres[placement.labelled & np.isin(placement.names, SOLID)]
    assert len(solid) >= 3
    at = vol[tuple(np.rint(solid).astype(int).T)]
    assert at.mean() < vol.mean() - 0.5 * vol.std()
    assert np.mean(at < np.median(vol)) >= 0.7
    potential, _ = render_potential((48, 128, 128), Slab(centre=24.0, thickness=200.0), placement)
    assert potential[tuple(np.rint(solid).astype(int).T)].min() > 1.2  # protein denser than ice (1)


def test_missing_wedge_empty_after_imaging():
    shape = (32, 48, 40)
    rng = np.random.default_rng(0)
    potential = rng.standard_normal(shape).astype(np.float32)
    for snr in (math.inf, 1.0):
        vol = reconstruct(potential, rng, ImagingParams(snr=snr), VOXEL_SPACING, potential > 1, ("wbp",)).volumes["wbp"]
        power = np.abs(sfft.rfftn(vol)) ** 2
        kz, _, kx = frequency_grid(shape, VOXEL_SPACING)
        wedge = np.broadcast_to(np.abs(kz) > np.tan(np.deg2rad(60)) * np.abs(kx), power.shape)
        assert power[wedge].sum() < 1e-8 * power.sum()
        ratio = np.broadcast_to(np.abs(kz) / np.maximum(np.abs(kx), 1e-9), power.shape)
        inside_tilt_range = (ratio > np.tan(np.deg2rad(35))) & (ratio < np.tan(np.deg2rad(55)))
        assert power[inside_tilt_range].mean() > 1e-2 * power.mean()  # measured up to ±60°, not less
    kz, _, kx = frequency_grid(shape, VOXEL_SPACING)
    mask = missing_wedge_mask(kz, kx)
    assert not mask[3, 0, 0] and mask[0, 0, 3] and mask[0, 0, 0]  # kz axis missing, kx axis kept


def test_ctf_and_wbp_noisier_than_denoised():
    k2 = np.array([0.0, 1 / 30.0 ** 2], dtype=np.float32)
    c = ctf(k2, 30_000.0, bfactor=0.0)
    assert c[0] == pytest.approx(0.07, abs=1e-6)
    rng = np.random.default_rng(1)
    potential = rng.standard_normal((32, 32, 32)).astype(np.float32)
    vols = reconstruct(potential, rng, ImagingParams(snr=0.1), VOXEL_SPACING, potential > 1, ("wbp",
                                                                                              "denoised")).volumes
    assert vols["wbp"].std() > 1.5 * vols["denoised"].std() > 0


def test_zarr_multiscale_layout(tmp_path: Path):
    vol = np.random.default_rng(0).standard_normal((10, 21, 33)).astype(np.float32)
    path = write_multiscale_zarr(tmp_path / "denoised.zarr", vol)
    write_multiscale_zarr(path, vol)  # overwriting an existing group works
    group = zarr.open_group(str(path), mode="r")
    assert [group[k].shape for k in ("0", "1", "2")] == [(10, 21, 33), (5, 11, 17), (3, 6, 9)]
    np.testing.assert_array_equal(group["0"][:], vol)
    assert group["1"][0, 0, 0] == pytest.approx(vol[:2, :2, :2].mean(), rel=1e-5)
    datasets = group.attrs["multiscales"][0]["datasets"]
    assert [d["path"] for d in datasets] == ["0", "1", "2"]
    assert datasets[1]["coordinateTransformations"][0]["scale"] == [2 * VOXEL_SPACING] * 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["denoised.zarr"]  # no temporary left


def test_dataset_layout_and_config(tiny_dataset: Path):
    for run in TRAIN_RUNS:
        assert zarr.open_group(str(tomogram_path(tiny_dataset, "train", run)), mode="r")["0"].shape == TINY_SHAPE
    test_runs = simulated_test_runs(2)
    for run in test_runs:
        assert tomogram_path(tiny_dataset, "test", run).is_dir()
        assert not (train_overlay_root(tiny_dataset) / "ExperimentRuns" / run).exists()
    assert sorted(p.name for p in overlay_runs_dir(layout.truth_overlay_root(tiny_dataset)).iterdir()) == test_runs
    assert not (tiny_dataset / "test" / "overlay").exists()
    config = json.loads((tiny_dataset / COPICK_CONFIG_NAME).read_text())
    assert [(o["name"], o["label"], o["radius"], o["pdb_id"], o["is_particle"]) for o in config["pickable_objects"]] \
        == [(p.name, p.label, p.radius, p.pdb_id, True) for p in PARTICLES]
    assert config["overlay_root"] == f"local://{train_overlay_root(tiny_dataset).resolve()}"
    assert config["static_root"] == f"local://{(tiny_dataset / 'train' / 'static').resolve()}"
    picks = [_read_picks(train_overlay_root(tiny_dataset), r) for r in TRAIN_RUNS]
    assert all(len(v) >= 1 for run in picks for v in run.values())  # every class in every run, as in real runs
    ribosomes = {tuple(run["ribosome"][0]) for run in picks}
    assert len(ribosomes) == len(TRAIN_RUNS)  # runs differ
    # the folds written beside the dataset are the repository's for the CZII names
    assert load_folds(tiny_dataset / "folds.yaml", TRAIN_RUNS) == load_folds(REPO / "folds.yaml", TRAIN_RUNS)


def _write_mrc(path: Path, data: np.ndarray, voxel: float = 10.0) -> None:
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(data.astype(np.float32))
        mrc.voxel_size = voxel


def _ball(n: int, r: float, offset: float = 0.0) -> np.ndarray:
    idx = np.indices((n, n, n)) - (n - 1) / 2
    idx[2] -= offset
    return (np.linalg.norm(idx, axis=0) <= r).astype(np.float32) * 7.0


def test_templates_replace_builtin_shapes(tmp_path: Path):
    _write_mrc(tmp_path / "Ribosome.mrc", _ball(21, 8.0, offset=2.0))
    _write_mrc(tmp_path / "6n4v.MRC", _ball(21, 9.0) - _ball(21, 6.0))
    _write_mrc(tmp_path / "distractor_albumin.mrc", _ball(9, 3.0))
    templates = load_templates(tmp_path)
    assert sorted(templates.particles) == ["ribosome", "virus-like-particle"]
    assert len(templates.distractors) == 1
    ribo = templates.particles["ribosome"]
    assert ribo.extent == pytest.approx(90.0, abs=11.0)
    vol = np.zeros((40, 40, 40), np.float32)
    centre = np.array([19.6, 20.2, 18.9])
    render_into(vol, ribo, centre, random_rotations(1, np.random.default_rng(0))[0], VOXEL_SPACING)
    idx = np.indices(vol.shape).reshape(3, -1)
    assert np.abs((idx * vol.reshape(-1)).sum(1) / vol.sum() - centre).max() < 0.2  # centred on its mass
    assert vol[tuple(np.rint(centre).astype(int))] == pytest.approx(1.0, abs=0.05)  # normalised density
    vol_t, picks = simulate_tomogram(SMALL, np.random.default_rng(1), templates=tmp_path)
    vol_b, _ = simulate_tomogram(SMALL, np.random.default_rng(1))
    assert np.isfinite(vol_t).all() and not np.array_equal(vol_t, vol_b) and len(picks) > 0


@pytest.mark.parametrize("case", ["missing", "no-match", "non-cubic", "nan", "unreadable"])
def test_bad_template_folder_is_a_clear_error(tmp_path: Path, case: str):
    if case == "missing":
        with pytest.raises(FileNotFoundError, match="does not exist"):
            load_templates(tmp_path / "nope")
        return
    bad = tmp_path / "ribosome.mrc"
    if case == "no-match":
        _write_mrc(tmp_path / "lysozyme.mrc", _ball(9, 3.0))
        expected = "no file matches a particle"
    elif case == "non-cubic":
        _write_mrc(bad, np.ones((4, 5, 6)))
        expected = "cubic"
    elif case == "nan":
        with pytest.warns(RuntimeWarning):
            _write_mrc(bad, np.full((5, 5, 5), np.nan))
        expected = "NaN"
    else:
        bad.write_text("not a map")
        expected = "cannot read"
    with pytest.raises(ValueError, match=expected) as err:
        load_templates(tmp_path)
    assert "lysozyme" in str(err.value) if case == "no-match" else str(bad) in str(err.value)


def test_distractor_kinds_and_sizes():
    rng = np.random.default_rng(0)
    gold = random_distractor("gold", rng)
    assert gold.components[0].density > 1.0 and gold.extent < 60
    assert random_distractor("blob", rng).extent < 40
    with pytest.raises(ValueError, match="unknown distractor kind"):
        random_distractor("ice", rng)


def test_resolve_size():
    assert resolve_size("demo") == (96, 256, 256)
    assert resolve_size("full") == (184, 630, 630)
    assert resolve_size("48,96,96") == resolve_size((48, 96, 96)) == (48, 96, 96)
    with pytest.raises(ValueError, match="size"):
        resolve_size("huge")


def test_cli_writes_a_dataset(tmp_path: Path):
    out = tmp_path / "ds"
    cmd = [sys.executable, str(REPO / "simulate.py"), "--out", str(out), "--size", "16,40,40", "--n-test", "1",
           "--seed", "3", "--tomo-types", "denoised", "wbp"]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (out / COPICK_CONFIG_NAME).is_file()
    assert tomogram_path(out, "train", "TS_99_9", "wbp").is_dir()
    assert tomogram_path(out, "test", "TS_sim_test_0", "denoised").is_dir()
    bad = subprocess.run(cmd[:2] + ["--out", str(tmp_path / "other"), "--size", "huge"], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "size" in bad.stderr
    config_bytes = (out / COPICK_CONFIG_NAME).read_bytes()
    again = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert again.returncode != 0 and "--overwrite" in again.stderr  # an existing dataset is never clobbered
    assert (out / COPICK_CONFIG_NAME).read_bytes() == config_bytes
    for bad in (["--n-train", "0"], ["--size", "huge"], ["--n-test", "-1"],
                ["--size", "3000,3000,3000"]):  # refused before the old set goes (the last: memory)
        refused = subprocess.run(cmd + ["--overwrite", *bad], cwd=REPO, capture_output=True, text=True, timeout=120)
        assert refused.returncode == 2 and tomogram_path(out, "test", "TS_sim_test_0", "denoised").is_dir()
        assert (out / COPICK_CONFIG_NAME).read_bytes() == config_bytes
    (out / "my_notes.txt").write_text("mine\n")  # the user's file beside the dataset
    replaced = subprocess.run(cmd + ["--overwrite", "--n-test", "0"], cwd=REPO, capture_output=True, text=True,
                              timeout=120)
    assert replaced.returncode == 0, replaced.stderr
    assert not (out / "test").exists()  # the old dataset's test runs went with it
    assert (out / "my_notes.txt").read_text() == "mine\n"  # what simulate.py did not write stays


def test_overwrite_deletes_only_what_the_marker_names(tmp_path: Path):
    from simulation.ownership import MARKER_NAME, check_budget, clear_dataset, write_marker

    out = tmp_path / "ds"
    (out / "train").mkdir(parents=True)
    (out / "train" / "x").write_text("old run")
    (out / "elsewhere").mkdir()
    (out / "elsewhere" / "keep.txt").write_text("keep")
    (out / "test").symlink_to(out / "elsewhere")  # a link is removed, never followed
    with pytest.raises(FileExistsError, match=f"has no {MARKER_NAME}"):
        clear_dataset(out)
    assert (out / "train" / "x").is_file()
    write_marker(out)
    removed = clear_dataset(out)
    assert sorted(p.name for p in removed) == sorted(["train", "test", MARKER_NAME])
    assert (out / "elsewhere" / "keep.txt").read_text() == "keep" and not (out / "test").exists()
    (out / MARKER_NAME).write_text(json.dumps({"created_by": "czii-picker simulate.py", "parts": ["../victim"]}))
    with pytest.raises(ValueError, match="cannot name a file or folder"):
        clear_dataset(out)
    with pytest.raises(ValueError, match="GiB of memory"):
        check_budget(out, (96, 256, 256), 10, 1, memory=2**28)
    check_budget(tmp_path / "new", (16, 40, 40), 10, 1, memory=2**32)


def test_pretraining_set_of_many_runs_and_every_difficulty(tmp_path: Path):
    """``--n-train 5 --difficulty 1:8``: five generated train runs, a folds file that splits exactly them,
    and each run's SNR inside the range (the report records them)."""
    out = tmp_path / "pretrain"
    cmd = [sys.executable, str(REPO / "simulate.py"), "--out", str(out), "--size", "16,40,40", "--n-train", "5",
           "--n-test", "0", "--difficulty", "1:8"]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    runs = [f"TS_sim_train_{i}" for i in range(5)]
    assert sorted(p.name for p in (out / "train" / "static" / "ExperimentRuns").iterdir()) == runs
    assert load_folds(out / "folds.yaml", runs) == {k: [run] for k, run in enumerate(runs)}
    report = json.loads((out / "difficulty.json").read_text())
    snrs = [r["imaging"]["snr"] for r in report["runs"]]
    assert len(snrs) == 5 and all(1.0 <= s <= 8.0 for s in snrs) and len(set(snrs)) == 5
    bad = subprocess.run(cmd[:3] + [str(tmp_path / "other"), "--n-train", "0"], cwd=REPO, capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode != 0 and "n_train must be >= 1" in bad.stderr
