"""Multi-process training and prediction as a cluster runs them: the rank from the launcher's environment,
one job per run folder, and real launches (torchrun with gloo, two hand-launched SLURM tasks) on the CPU."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from runtime.run_lock import acquire_run_lock, lock_path, read_lock, release_run_lock
from runtime.run_status import read_run_status
from runtime.launch import Launch, current_launch, first_slurm_host, slurm_rendezvous
from particles import PARTICLE_NAMES
from tests.training_fixtures import cli_args, tiny_overrides

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "WANDB_MODE": "disabled", "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}


def test_the_rank_comes_from_the_launchers_environment() -> None:
    torchrun = current_launch({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "TORCHELASTIC_RUN_ID": "abc",
                               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"})
    assert (torchrun.rank, torchrun.world_size, torchrun.prepares_run_folder) == (1, 2, False)
    assert current_launch({"RANK": "0", "WORLD_SIZE": "2", "TORCHELASTIC_RUN_ID": "abc", "MASTER_ADDR": "127.0.0.1",
                           "MASTER_PORT": "29500"}).token == torchrun.token
    slurm = {"SLURM_NTASKS": "2", "SLURM_PROCID": "1", "SLURM_LOCALID": "1", "SLURM_NODEID": "0",
             "SLURM_JOB_ID": "77", "SLURM_STEP_ID": "0", "SLURM_JOB_NAME": "train"}
    assert current_launch(slurm) == Launch(1, 2, "slurm-77.0", local_rank=1, kind="slurm")
    assert current_launch({**slurm, "SLURM_PROCID": "0"}).prepares_run_folder
    assert current_launch({**slurm, "SLURM_JOB_NAME": "bash"}).prepares_run_folder  # an interactive shell
    child = current_launch({"LOCAL_RANK": "1", "WORLD_SIZE": "2", "NODE_RANK": "0", "MASTER_PORT": "4"})
    assert child.spawned_by_lightning and not child.prepares_run_folder
    single = current_launch({})
    assert single.rank == 0 and single.prepares_run_folder and str(os.getpid()) in single.token


def test_one_job_per_run_folder(tmp_path, capsys) -> None:
    run_dir = tmp_path / "runs" / "exp_fold0"
    acquire_run_lock(run_dir, "launch-a")
    acquire_run_lock(run_dir, "launch-a")  # every rank of one launch shares it
    with pytest.raises(FileExistsError, match=f"in use by another job .*pid {os.getpid()}, launch launch-a"):
        acquire_run_lock(run_dir, "launch-b")
    release_run_lock(run_dir, "launch-b")  # never another launch's lock
    assert read_lock(run_dir)["launch"] == "launch-a"
    release_run_lock(run_dir, "launch-a")
    assert not lock_path(run_dir).exists()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    lock_path(run_dir).write_text(json.dumps({"host": os.uname().nodename, "pid": gone.pid, "launch": "dead"}))
    acquire_run_lock(run_dir, "launch-c")  # the holder's process is gone: stale, taken over with a note
    assert "was left by a job that is gone" in capsys.readouterr().out
    assert read_lock(run_dir)["launch"] == "launch-c"


def _race_for_lock(run_dir: str, launch: str, start: float, results, done) -> None:
    """One starter of a race: wait for the common start time, try to take the lock, then stay alive (a holder
    that exits leaves a stale lock, rightly taken over) until every starter has tried."""
    while time.time() < start:
        pass
    try:
        acquire_run_lock(Path(run_dir), launch)
        results.put(launch)
    except FileExistsError:
        results.put(None)
    done.wait(60)


def test_a_stale_lock_goes_to_exactly_one_of_many_starters(tmp_path) -> None:
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    for round_ in range(5):
        run_dir = tmp_path / f"runs{round_}" / "exp_fold0"
        run_dir.parent.mkdir()
        gone = subprocess.Popen([sys.executable, "-c", "pass"])
        gone.wait()
        lock_path(run_dir).write_text(json.dumps({"host": os.uname().nodename, "pid": gone.pid, "launch": "dead"}))
        results, done, start = ctx.Queue(), ctx.Event(), time.time() + 0.5
        racers = [ctx.Process(target=_race_for_lock, args=(str(run_dir), f"launch-{i}", start, results, done))
                  for i in range(6)]
        for racer in racers:
            racer.start()
        winners = [w for w in (results.get(timeout=60) for _ in racers) if w is not None]
        assert len(winners) == 1, winners
        assert read_lock(run_dir)["launch"] == winners[0]
        done.set()
        for racer in racers:
            racer.join(timeout=60)
        assert [p.name for p in run_dir.parent.iterdir()] == [lock_path(run_dir).name]  # no temporaries left


def test_an_unreadable_lock_is_refused_while_fresh_and_taken_over_when_old(tmp_path, capsys) -> None:
    run_dir = tmp_path / "runs" / "exp_fold0"
    run_dir.parent.mkdir()
    lock_path(run_dir).write_text("")  # an older version killed between creating and writing its lock
    with pytest.raises(FileExistsError, match=f"lock file {lock_path(run_dir)}"):
        acquire_run_lock(run_dir, "launch-a")
    old = time.time() - 3600
    os.utime(lock_path(run_dir), (old, old))
    acquire_run_lock(run_dir, "launch-a")
    assert read_lock(run_dir)["launch"] == "launch-a" and "an unreadable record" in capsys.readouterr().out


def test_every_launch_gets_its_own_token_and_its_ranks_share_it() -> None:
    from datetime import timedelta

    from torch.distributed import TCPStore

    from runtime.launch import with_unique_token

    tokens = []
    for host in ("node-a", "node-b"):  # two plain torchrun launches: the same environment on two hosts
        store = TCPStore("127.0.0.1", 0, is_master=True, timeout=timedelta(seconds=30))
        env = {"WORLD_SIZE": "2", "TORCHELASTIC_RUN_ID": "none", "MASTER_ADDR": "127.0.0.1",
               "MASTER_PORT": str(store.port), "TORCHELASTIC_USE_AGENT_STORE": "True"}
        zero = with_unique_token(current_launch({**env, "RANK": "0"}), {**env, "RANK": "0"})
        one = with_unique_token(current_launch({**env, "RANK": "1"}), {**env, "RANK": "1"}, timeout_s=30)
        assert zero.token == one.token and zero.token.startswith("torchrun-"), host
        tokens.append(zero.token)
        del store
    assert tokens[0] != tokens[1]
    assert with_unique_token(current_launch({})).token != with_unique_token(current_launch({})).token


def _train_args(data: Path, out: Path, epochs: int, patches: int = 4) -> list[str]:
    overrides = tiny_overrides(data, steps=patches, trainer={"accelerator": "cpu", "devices": "2", "strategy": "ddp",
                                                             "max_epochs": epochs},
                               data={"batch_size": 1}, inference={"window": [48, 96, 96]})
    return ["train.py", "--out", str(out), "--experiment", "launch", *cli_args(overrides)]  # one folder, any length


def _torchrun(*args: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *args]


def _run(cmd: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=timeout)


def _kill_every_process_of(marker: Path) -> None:
    """SIGKILL every process whose command line names ``marker`` (torchrun puts its workers in other
    process groups, so killing the launcher's group would leave them running)."""
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and str(marker) in (proc / "cmdline").read_bytes().decode(errors="replace"):
                os.kill(int(proc.name), signal.SIGKILL)
        except (OSError, ValueError):
            continue


def _one_run_folder(runs: Path) -> Path:
    folders = [p for p in runs.iterdir() if p.is_dir()]
    assert len(folders) == 1, folders
    return folders[0]


@pytest.mark.slow
def test_torchrun_training_fresh_overwrite_refused_second_job_kill_and_resume(tiny_dataset, tmp_path) -> None:
    runs = tmp_path / "runs"
    fresh = _run(_torchrun(*_train_args(tiny_dataset, runs, epochs=2)))
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    run_dir = _one_run_folder(runs)
    assert read_run_status(run_dir)["status"] == "finished" and read_run_status(run_dir)["global_step"] == 4
    assert {p.name for p in (run_dir / "checkpoints").iterdir()} == {"last.ckpt", "weights.ckpt"}
    assert not lock_path(run_dir).exists()

    again = _run(_torchrun(*_train_args(tiny_dataset, runs, epochs=2), "--overwrite"))
    assert again.returncode == 0, again.stderr[-3000:]
    assert _one_run_folder(runs) == run_dir and read_run_status(run_dir)["status"] == "finished"
    assert (run_dir / "config.yaml").is_file() and (run_dir / "split.yaml").is_file()

    long_run = _train_args(tiny_dataset, runs, epochs=2000)
    log = tmp_path / "long_run.log"  # a file, not a pipe: a full pipe nobody reads would block the workers
    with open(log, "w") as sink:
        job = subprocess.Popen(_torchrun(*long_run, "--overwrite"), cwd=REPO, env=ENV, text=True, stdout=sink,
                               stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 240
    while not (run_dir / "checkpoints" / "weights.ckpt").is_file() or read_run_status(run_dir)["status"] != "running":
        assert job.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.5)
    second = _run([sys.executable, *long_run, "--resume"])
    assert second.returncode == 2 and "is in use by another job" in second.stderr, second.stderr[-2000:]
    _kill_every_process_of(runs)  # the node dies: torchrun and its workers (in their own groups), no clean-up
    job.wait(timeout=60)
    assert read_run_status(run_dir)["status"] == "running" and lock_path(run_dir).exists()

    done = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["epoch"]  # epochs completed
    resumed = _run(_torchrun(*_train_args(tiny_dataset, runs, epochs=done + 2), "--resume"), timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "was left by a job that is gone" in resumed.stdout + resumed.stderr
    status = read_run_status(run_dir)
    assert status["status"] == "finished" and status["global_step"] == 2 * (done + 2)
    assert _one_run_folder(runs) == run_dir and not lock_path(run_dir).exists()


@pytest.mark.slow
def test_two_slurm_tasks_train_one_run_folder(tiny_dataset, tmp_path) -> None:
    """Two processes launched by hand with the environment srun gives its tasks: rank 1 waits for rank 0's
    folder, both train, rank 0 alone writes."""
    runs = tmp_path / "runs"
    slurm = {"SLURM_NTASKS": "2", "SLURM_NTASKS_PER_NODE": "2", "SLURM_NNODES": "1", "SLURM_NODEID": "0",
             "SLURM_JOB_ID": "4242", "SLURM_STEP_ID": "0", "SLURM_JOB_NAME": "czii", "SLURM_NODELIST": "127.0.0.1",
             "SLURM_JOB_NUM_NODES": "1", "SLURM_CPUS_ON_NODE": "2", "MASTER_ADDR": "127.0.0.1",
             "MASTER_PORT": str(29600 + os.getpid() % 300)}
    logs = [tmp_path / f"task{r}.log" for r in (1, 0)]
    tasks = []
    for r, log in zip((1, 0), logs):  # rank 1 first; logs in files, so no unread pipe blocks a task
        with open(log, "w") as sink:
            tasks.append(subprocess.Popen([sys.executable, *_train_args(tiny_dataset, runs, epochs=2)], cwd=REPO,
                                          text=True, stdout=sink, stderr=subprocess.STDOUT,
                                          env={**ENV, **slurm, "SLURM_PROCID": str(r), "SLURM_LOCALID": str(r)}))
    for task in tasks:
        task.wait(timeout=300)
    assert [t.returncode for t in tasks] == [0, 0], [log.read_text()[-2000:] for log in logs]
    run_dir = _one_run_folder(runs)
    assert read_run_status(run_dir)["status"] == "finished" and read_run_status(run_dir)["global_step"] == 4


def test_slurm_tasks_meet_at_the_first_node_without_a_job_script_line() -> None:
    assert [first_slurm_host(n) for n in ("gpu[07-09,12],cpu1", "node1,node2", "a[1]", "10.0.0.5")] == [
        "gpu07", "node1", "a1", "10.0.0.5"]
    assert slurm_rendezvous({"SLURM_NODELIST": "n[3-4]", "SLURM_JOB_ID": "1234567"}) == "tcp://n3:19567"
    assert slurm_rendezvous({"SLURM_NODELIST": "n3", "MASTER_ADDR": "h", "MASTER_PORT": "5"}) == "tcp://h:5"


@pytest.mark.slow
def test_torchrun_ensemble_fits_thresholds_once_and_writes_what_one_process_writes(tiny_dataset, tmp_path) -> None:
    runs = tmp_path / "runs"
    trained = _run([sys.executable, *_train_args(tiny_dataset, runs, epochs=1), "--trainer.devices", "1",
                    "--trainer.strategy", "auto"])  # one process trains; the launch under test is the ensemble
    assert trained.returncode == 0, trained.stderr[-3000:]
    common = ["ensemble.py", "--runs", str(runs), "--data", str(tiny_dataset), "--split", "test"]
    one = _run([sys.executable, *common, "--out", str(tmp_path / "one.csv")])
    assert one.returncode == 0, one.stderr[-3000:]
    (saved,) = runs.glob("*.thresholds.json")
    fitted_once = json.loads(saved.read_text())["thresholds"]
    saved.unlink()
    two = _run(_torchrun(*common, "--out", str(tmp_path / "two.csv"), "--pictures", str(tmp_path / "pictures")))
    assert two.returncode == 0, two.stderr[-3000:]
    # each rank drew its own tomogram; rank 0 committed every picture with the CSV, no temporaries left
    assert sorted(p.name for p in (tmp_path / "pictures").iterdir()) == [
        "TS_sim_test_0_slices.png", "TS_sim_test_1_slices.png", "oof_pr_curves.png"]
    assert two.stdout.count("out-of-fold CV over") == 1 and "predicting (rank 1)" in two.stderr
    assert json.loads(saved.read_text())["thresholds"] == fitted_once
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "one.csv"), pd.read_csv(tmp_path / "two.csv"))
    assert set(fitted_once) == set(PARTICLE_NAMES)
    # two tasks as `srun -n 2 python ensemble.py` starts them: no torchrun, no MASTER_ADDR in the job script
    slurm = {"SLURM_NTASKS": "2", "SLURM_NODEID": "0", "SLURM_JOB_ID": str(1000 + os.getpid() % 5000),
             "SLURM_STEP_ID": "0", "SLURM_JOB_NAME": "czii", "SLURM_NODELIST": "127.0.0.1"}
    logs = [tmp_path / f"task{r}.log" for r in (0, 1)]
    tasks = []
    for r, log in enumerate(logs):
        with open(log, "w") as sink:
            tasks.append(subprocess.Popen([sys.executable, *common, "--out", str(tmp_path / "tasks.csv")],
                                          cwd=REPO, text=True, stdout=sink, stderr=subprocess.STDOUT,
                                          env={**ENV, **slurm, "SLURM_PROCID": str(r), "SLURM_LOCALID": str(r)}))
    for task in tasks:
        task.wait(timeout=300)
    assert [t.returncode for t in tasks] == [0, 0], [log.read_text()[-2000:] for log in logs]
    assert "predicting (rank 1)" in logs[1].read_text() and "thresholds from" in logs[0].read_text()
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "one.csv"), pd.read_csv(tmp_path / "tasks.csv"))
