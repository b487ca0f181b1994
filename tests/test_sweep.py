"""ginlight-sweep: sweep lines, grid/random/TPE search, workers, resuming, failures, PostgreSQL.

Every trial is a real ``ginlight-train`` process, so the trials are tiny (one
epoch of two batches) and few.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import pytest
import steering

from ginlight.errors import ConfigError
from ginlight.sweep import load_search_space, parse_parameter, run_sweep
from ginlight.sweep.trial import Outcome, TrialError

REPO = Path(__file__).resolve().parents[1]
CLASSIFIER = REPO / "configs" / "classifier.gin"
TINY = ["MAX_EPOCHS=1", "Trainer.limit_train_batches=2", "Trainer.limit_val_batches=1",
        "Trainer.enable_progress_bar=False", "Trainer.enable_model_summary=False"]
SWEEP_SCRIPT = Path(sys.executable).parent / "ginlight-sweep"

def sweep_args(root: Path, *flags: str) -> list[str]:
    return [f"--gin_file={CLASSIFIER}", *(f"--gin_bindings={b}" for b in TINY), f"--root_dir={root}", *flags]


def module_command(root: Path, *flags: str) -> list[str]:
    return [sys.executable, "-m", "ginlight.cli.sweep", *sweep_args(root, *flags)]


def run(command: list[str], cwd: Path, timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def probe_project(tmp_path_factory) -> Path:
    """A project with the steered model of tests/steering.py: one trial held or failed as a test asks."""
    return steering.write_project(tmp_path_factory.mktemp("probe-project"))


def probe_flags(project: Path) -> list[str]:
    """Sweep flags that wrap each trial's model in the steered one."""
    return [f"--project={project}", *(f"--gin_bindings={b}" for b in steering.WRAP)]


def sweep_dir(root: Path) -> Path:
    (found,) = (root / "classifier").glob("sweep-*")
    return found


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def record(run_dir: Path) -> dict:
    return json.loads((run_dir / "run.json").read_text())


def wait_for(condition, what: str, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.5)


def status_is(run_dir: Path, status: str) -> bool:
    try:
        return record(run_dir)["status"] == status
    except (OSError, ValueError):
        return False


# ---- sweep lines ------------------------------------------------------------------------------


def test_sweep_lines_are_read_with_gin_syntax():
    lr = parse_parameter("torch.optim.Adam.lr=[1e-3, 1e-2]")
    assert (lr.key, lr.kind, lr.choices) == ("torch.optim.Adam.lr", "choice", ("0.001", "0.01"))
    assert lr.binding("0.01") == "torch.optim.Adam.lr = 0.01" and lr.numeric and not lr.log_scale
    scoped = parse_parameter("train/torch.utils.data.DataLoader.batch_size = [8, 16]")
    assert scoped.key == "train/torch.utils.data.DataLoader.batch_size"
    mixed = parse_parameter("""System.model = [(16, 32), 'relu', @ginlight.models.MLP(), %HIDDEN, @torch.nn.ReLU, None]""")
    assert mixed.choices == ("(16, 32)", "'relu'", "@ginlight.models.MLP()", "%HIDDEN", "@torch.nn.ReLU", "None")
    assert not mixed.numeric
    assert parse_parameter("LR = [1e-4, 1e-3, 1e-2]").log_scale

    log = parse_parameter("LR = loguniform(1e-4, 1e-1)")
    assert (log.key, log.kind, log.low, log.high) == ("LR", "loguniform", 1e-4, 0.1)
    assert str(log) == "LR = loguniform(0.0001, 0.1)"
    assert (parse_parameter("A.b = int(1, 8)").kind, parse_parameter("A.b=uniform(0, 0.5)").high) == ("int", 0.5)
    assert parse_parameter("A.b = choice('x', (1, 2))").choices == ("'x'", "(1, 2)")


@pytest.mark.parametrize("line, message", [
    ("A.b = 3", "gives one value"),
    ("A.b = [1, 2", "unclosed bracket"),
    ("A.b = [1, 2] [3]", "cannot read sweep line"),
    ("A.b = [1, 1]", "lists 1 more than once"),
    ("A.b = []", "has no values"),
    ("A.b = loguniform(0, 1)", "needs 0 < low"),
    ("A.b = uniform(2, 1)", "needs low < high"),
    ("A.b = int(1.5, 3)", "two integers"),
    ("A.b = uniform('a', 'b')", "two numbers"),
    ("A.b = __import__('os').system('x')", "cannot read sweep line"),
])
def test_wrong_sweep_lines_say_what_is_wrong(line, message):
    with pytest.raises(ConfigError, match="sweep line") as error:
        parse_parameter(line)
    assert message in str(error.value) and error.value.location == "--sweep"
    assert "loguniform(low, high)" in error.value.hint


def test_sweep_file_lines_and_their_locations(tmp_path):
    sweep_file = tmp_path / "space.txt"
    sweep_file.write_text("# learning rates\ntorch.optim.AdamW.lr = [1e-3, 1e-2]\n\nBATCH_SIZE = [8, 16\n")
    with pytest.raises(ConfigError) as error:
        load_search_space(["MAX_EPOCHS = [1, 2]"], sweep_file)
    assert error.value.location == f"{sweep_file}:4"
    sweep_file.write_text("# learning rates\ntorch.optim.AdamW.lr = [1e-3, 1e-2]\n")
    space = load_search_space(["MAX_EPOCHS = [1, 2]"], sweep_file)
    assert [p.key for p in space] == ["MAX_EPOCHS", "torch.optim.AdamW.lr"]
    assert space[1].where == f"{sweep_file}:2"
    with pytest.raises(ConfigError, match="swept more than once"):
        load_search_space(["MAX_EPOCHS = [1, 2]", "MAX_EPOCHS = [3]"])


@pytest.mark.slow
def test_definitions_that_cannot_run_fail_before_any_trial(tmp_path):
    def sweep(*lines: str, **options):
        run_sweep([CLASSIFIER], TINY, [parse_parameter(line) for line in lines], root_dir=tmp_path, **options)

    with pytest.raises(ConfigError, match="is a distribution") as error:
        sweep("LR = loguniform(1e-4, 1e-1)")
    assert "--mode=random" in error.value.hint
    with pytest.raises(ConfigError, match="grid search runs every combination"):
        sweep("LR = [1e-3]", trials=3)
    with pytest.raises(ConfigError, match="needs the number of trials"):
        sweep("LR = [1e-3]", mode="tpe")
    with pytest.raises(ConfigError, match="higher or a lower val/accuracy"):
        sweep("LR = [1e-3]", objective="val/accuracy")
    assert not tmp_path.joinpath("classifier").exists()


@pytest.mark.slow
def test_a_misspelt_binding_fails_before_any_trial(tmp_path):
    def sweep(*lines: str):
        run_sweep([CLASSIFIER], TINY, load_search_space(lines), root_dir=tmp_path)

    with pytest.raises(ConfigError, match="'torch.optim.AdamW' has no parameter 'learning_rate'") as error:
        sweep("BATCH_SIZE = [8, 16]", "torch.optim.AdamW.learning_rate = [1e-3, 1e-2]")
    assert error.value.location == "--sweep" and "Its parameters are: params, lr," in error.value.hint
    with pytest.raises(ConfigError, match="macro 'NOT_A_MACRO' is not defined by the config"):
        sweep("NOT_A_MACRO = [1, 2]")
    assert not (tmp_path / "classifier").exists()  # no sweep directory, no trial


@pytest.mark.slow
def test_help_imports_no_framework():
    probe = "import sys, ginlight.cli.sweep; print(sorted({'torch', 'lightning', 'optuna'} & set(sys.modules)))"
    result = run([sys.executable, "-c", probe], cwd=REPO)
    assert result.stdout.strip() == "[]", result.stderr
    result = run([str(SWEEP_SCRIPT), "--help"], cwd=REPO)
    assert result.returncode == 0 and "--sweep_file" in result.stdout and "--storage" in result.stdout


# ---- sweeps -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_grid_sweep_on_two_workers_records_every_trial_and_reruns_the_best(tmp_path):
    root = tmp_path / "runs"
    result = run([str(SWEEP_SCRIPT), *sweep_args(
        root, "--sweep=torch.optim.AdamW.lr=[3e-3, -1.0]", "--sweep=BATCH_SIZE=[8, 16]",
        "--objective=val/accuracy", "--direction=max", "--workers=2")], cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    folder = sweep_dir(root)
    trials = sorted(folder.glob("trial-*"))
    assert [t.name for t in trials] == ["trial-000", "trial-001", "trial-002", "trial-003"]

    rows = read_csv(folder / "sweep.csv")
    assert [row["trial"] for row in rows] == ["0", "1", "2", "3"]
    assert {(row["torch.optim.AdamW.lr"], row["BATCH_SIZE"]) for row in rows} == {
        ("0.003", "8"), ("0.003", "16"), ("-1.0", "8"), ("-1.0", "16")}
    for row in rows:
        assert row["run_dir"] == str(folder / f"trial-{int(row['trial']):03d}")
        if row["torch.optim.AdamW.lr"] == "-1.0":  # the failing trials are recorded, the sweep goes on
            assert row["status"] == "failed" and "Invalid learning rate" in row["error"]
            assert "Invalid learning rate" in (folder / "logs" / f"{Path(row['run_dir']).name}.log").read_text()
        else:
            assert row["status"] == "completed" and row["error"] == ""
            metrics = record(Path(row["run_dir"]))["metrics"]
            assert float(row["objective"]) == metrics["val/accuracy"]
            assert float(row["val/loss"]) == metrics["val/loss"]
    assert result.stdout.count("/4] trial-") == 4  # a progress line per trial

    # Both workers ran at once: in the study (an SQLite file in the sweep directory) two trials overlap.
    study = optuna.load_study(study_name=json.loads((folder / "sweep.json").read_text())["study"],
                              storage=f"sqlite:///{folder / 'study.db'}")
    first, second = study.get_trials()[:2]
    assert first.datetime_start < second.datetime_complete and second.datetime_start < first.datetime_complete

    completed = [row for row in rows if row["status"] == "completed"]
    best = max(completed, key=lambda row: float(row["objective"]))
    summary = (folder / "summary.md").read_text()
    table = [line for line in summary.splitlines() if line.startswith("| 1 |")]
    assert table and f"trial-{int(best['trial']):03d}" in table[0]
    assert (folder / "objective.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # The same threads as the trial had (each of two workers gets one core), so the same sums: an exact rerun.
    rerun = run([sys.executable, "-m", "ginlight.cli.train", f"--gin_file={folder / 'best_config.gin'}",
                 f"--root_dir={tmp_path / 'rerun'}"], cwd=tmp_path, env={"OMP_NUM_THREADS": "1"})
    assert rerun.returncode == 0, rerun.stderr
    (rerun_dir,) = (tmp_path / "rerun" / "best_config").iterdir()

    def body(path: Path) -> list[str]:
        return [line for line in path.read_text().splitlines() if not line.startswith("#")]

    assert body(rerun_dir / "operative_config.gin") == body(Path(best["run_dir"]) / "operative_config.gin")
    assert record(rerun_dir)["metrics"] == record(Path(best["run_dir"]))["metrics"]


@pytest.mark.slow
def test_an_objective_the_runs_do_not_log_stops_the_sweep(tmp_path):
    root = tmp_path / "runs"
    result = run(module_command(root, "--sweep=BATCH_SIZE=[8, 16]", "--objective=val/acc", "--direction=max"),
                 cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "trial-000: the run has no final metric 'val/acc'; it has " in result.stderr
    assert "val/accuracy" in result.stderr and "Pass --objective" in result.stderr
    folder = sweep_dir(root)
    assert [p.name for p in folder.glob("trial-*")] == ["trial-000"]  # no other trial started
    (row,) = read_csv(folder / "sweep.csv")
    assert row["status"] == "failed" and "no final metric 'val/acc'" in row["error"]


SPACE_FILE = """# learning rate and width
torch.optim.AdamW.lr = loguniform(1e-4, 1e-2)
BATCH_SIZE = int(4, 32)
ginlight.models.ConvNet.channels = choice((4, 8), (8, 16))
"""


def check_sampled_trials(rows: list[dict[str, str]], objective: str) -> None:
    """Three completed trials whose sampled values are in range and reached their runs."""
    assert len(rows) == 3
    for row in rows:
        assert row["status"] == "completed"
        lr, batch_size = float(row["torch.optim.AdamW.lr"]), int(row["BATCH_SIZE"])
        assert 1e-4 <= lr <= 1e-2 and 4 <= batch_size <= 32
        assert row["ginlight.models.ConvNet.channels"] in ("(4, 8)", "(8, 16)")
        operative = (Path(row["run_dir"]) / "operative_config.gin").read_text()
        assert f"BATCH_SIZE = {batch_size}\n" in operative
        assert f"channels = {row['ginlight.models.ConvNet.channels']}\n" in operative
        assert float(row["objective"]) == record(Path(row["run_dir"]))["metrics"][objective]


@pytest.mark.slow
def test_tpe_search_samples_the_distributions_of_a_sweep_file(tmp_path):
    (tmp_path / "space.txt").write_text(SPACE_FILE)
    root = tmp_path / "runs"
    result = run(module_command(root, "--mode=tpe", "--trials=3", "--workers=3", "--sweep_file=space.txt",
                                "--objective=val/accuracy", "--direction=max"), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    folder = sweep_dir(root)
    assert len(list(folder.glob("trial-*"))) == 3
    check_sampled_trials(read_csv(folder / "sweep.csv"), "val/accuracy")


@pytest.mark.slow
def test_random_search_from_python(tmp_path):
    space = load_search_space(SPACE_FILE.splitlines()[1:])
    result = run_sweep([CLASSIFIER], TINY, space, mode="random", trials=3, workers=3, root_dir=tmp_path / "runs")
    assert result.sweep_dir == sweep_dir(tmp_path / "runs") and result.count("completed") == 3
    assert result.best.objective == min(row.objective for row in result.rows)  # val/loss, minimized
    check_sampled_trials(read_csv(result.sweep_dir / "sweep.csv"), "val/loss")


@pytest.mark.slow
def test_each_trial_reports_through_its_outcome_file_a_configuration_error_at_its_gin_line(tmp_path):
    # The macro passes the sweep's parse of the config; the System refuses 'weekly' when the trial builds it.
    config_file = tmp_path / "scheduled.gin"
    config_file.write_text(f"include '{CLASSIFIER}'\nINTERVAL = 'epoch'\nSystem.scheduler_interval = %INTERVAL\n")
    result = run_sweep([config_file], TINY, load_search_space(["INTERVAL = ['epoch', 'weekly']"]),
                       root_dir=tmp_path / "runs")
    rows = {row.params["INTERVAL"]: row for row in result.rows}
    outcome_files = {value: result.sweep_dir / "logs" / f"{row.name}.outcome.json" for value, row in rows.items()}
    outcomes = {value: Outcome.read(Path(rows[value].run_dir), path) for value, path in outcome_files.items()}
    completed = rows["'epoch'"]
    # A run's outcome is its run.json's: the outcome file holds only what that record cannot, an error before it.
    assert not outcome_files["'epoch'"].exists()
    assert outcomes["'epoch'"] == Outcome("completed", completed.run_dir, record(Path(completed.run_dir))["metrics"])
    assert completed.metrics == record(Path(completed.run_dir))["metrics"]
    error = TrialError("config", "System.scheduler_interval must be 'epoch' or 'step', got 'weekly'.",
                       f"{config_file}:3")
    assert outcomes["'weekly'"] == Outcome("failed", error=error)
    failed = rows["'weekly'"]
    assert (failed.status, failed.error) == ("failed", f"{config_file}:3: {error.message}")
    assert not Path(failed.run_dir).exists()  # a configuration error leaves no run directory
    (line,) = [line for line in read_csv(result.sweep_dir / "sweep.csv") if line["INTERVAL"] == "'weekly'"]
    assert line["error"] == failed.error


def _processes_using(folder: Path) -> list[int]:
    """The processes whose command line names ``folder`` or that hold a file under it open: the sweep and its
    trials (forked from the warm worker, a trial writes its console into its log there)."""
    pids = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
            files = [os.readlink(fd) for fd in (proc / "fd").iterdir()]
        except OSError:
            continue
        if str(folder) in cmdline or any(file.startswith(f"{folder}/") for file in files):
            pids.append(int(proc.name))
    return pids


@pytest.mark.slow
def test_a_killed_sweep_continues_and_reruns_the_trial_that_was_running(tmp_path, probe_project):
    root, marker = tmp_path / "runs", tmp_path / "held"
    command = module_command(root, *probe_flags(probe_project), "--sweep=BATCH_SIZE=[8, 16]")
    sweep = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True,
                             env={**os.environ, **steering.hold_env(1, marker, run="trial-001")})
    try:
        wait_for(marker.exists, "the second trial's first training step")
    finally:  # the machine dies: the sweep and the trial it runs
        for pid in {sweep.pid, *_processes_using(root)}:
            os.kill(pid, signal.SIGKILL)
        sweep.wait()
    folder = sweep_dir(root)
    assert status_is(folder / "trial-000", "completed")
    first = record(folder / "trial-000")
    lost = record(folder / "trial-001")
    assert lost["status"] == "running"

    result = run(command, cwd=tmp_path)  # the same command continues the sweep
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 finished already" in result.stdout
    assert sweep_dir(root) == folder
    assert record(folder / "trial-000") == first  # finished trials are kept, not rerun
    rows = read_csv(folder / "sweep.csv")
    assert [(row["trial"], row["status"]) for row in rows] == [("0", "completed"), ("2", "completed")]
    assert sorted(int(row["BATCH_SIZE"]) for row in rows) == [8, 16]
    # The trial that was running reran under a new number, with the same value.
    assert [arg for arg in record(folder / "trial-002")["argv"] if "BATCH_SIZE" in arg] == \
        [arg for arg in lost["argv"] if "BATCH_SIZE" in arg]


@pytest.mark.slow
def test_ctrl_c_stops_the_running_trial_and_queues_it_again(tmp_path, probe_project):
    root, marker = tmp_path / "runs", tmp_path / "held"
    sweep = subprocess.Popen(module_command(root, *probe_flags(probe_project), "--sweep=BATCH_SIZE=[8, 16]"),
                             cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env={**os.environ, **steering.hold_env(1, marker, run="trial-000")},
                             preexec_fn=steering.ctrl_c_reaches_it)
    wait_for(marker.exists, "the first trial's first training step")
    sweep.send_signal(signal.SIGINT)
    marker.unlink()  # Ctrl-C lets a training step finish, then the trial saves there and stops
    stdout, stderr = sweep.communicate(timeout=120)
    assert sweep.returncode == 130, stdout + stderr
    assert "run the same command again to continue" in stderr
    folder = sweep_dir(root)
    assert record(folder / "trial-000")["status"] == "interrupted"
    rows = read_csv(folder / "sweep.csv")
    (waiting,) = [row for row in rows if row["status"] == "waiting"]
    assert waiting["trial"] != "0"
    assert f"--gin_bindings=BATCH_SIZE = {waiting['BATCH_SIZE']}" in record(folder / "trial-000")["argv"]


# ---- PostgreSQL -------------------------------------------------------------------------------


def _postgres_bin() -> Path:
    found = shutil.which("pg_ctl")
    candidates = [Path(found).resolve().parent] if found else sorted(Path("/usr/lib/postgresql").glob("*/bin"))
    assert candidates, "no PostgreSQL server binaries (pg_ctl); install them: apt-get install postgresql (.ci/run does)"
    return candidates[-1]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def postgres_url():
    """A throwaway PostgreSQL server on loopback, run as the postgres user when we are root."""
    bin_dir = _postgres_bin()
    home = Path(tempfile.mkdtemp(prefix="ginlight-pg-"))  # not under pytest's root-only tmp folder
    user = []
    if os.geteuid() == 0:
        shutil.chown(home, "postgres", "postgres")
        user = ["runuser", "-u", "postgres", "--"]
    data, port = home / "data", _free_port()

    def pg(*args: str) -> None:
        subprocess.run([*user, *args], check=True, capture_output=True, timeout=120)

    pg(str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "--no-sync")
    pg(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(home / "server.log"), "-w", "-o",
       f"-p {port} -k {home} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        pg(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(home)


@pytest.mark.slow
def test_two_workers_share_a_postgresql_study(tmp_path, postgres_url):
    flags = [f"--storage={postgres_url}", "--study=shared-grid", "--sweep=torch.optim.AdamW.lr=[1e-3, 3e-3]",
             "--sweep=BATCH_SIZE=[8, 16]"]
    roots = [tmp_path / "machine-a", tmp_path / "machine-b"]  # as if on two machines
    workers = [subprocess.Popen(module_command(root, *flags), cwd=tmp_path, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True) for root in roots]
    outputs = [worker.communicate(timeout=400)[0] for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], outputs

    ran = {root: sorted(p.name for p in sweep_dir(root).glob("trial-*")) for root in roots}
    names = [name for root in roots for name in ran[root]]
    assert sorted(names) == ["trial-000", "trial-001", "trial-002", "trial-003"]  # none twice, none lost
    assert all(ran.values()), ran  # both workers ran trials

    study = optuna.load_study(study_name="shared-grid",  # the driver the sweep extra installs
                              storage=postgres_url.replace("postgresql://", "postgresql+psycopg2://"))
    trials = study.get_trials()
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 4
    assert len({tuple(sorted(t.params.items())) for t in trials}) == 4  # every grid point once
    for root in roots:  # each worker's results cover the whole sweep
        rows = read_csv(sweep_dir(root) / "sweep.csv")
        assert [(row["trial"], row["status"]) for row in rows] == [(str(i), "completed") for i in range(4)]
        for row in rows:
            assert row["run_dir"].startswith(str(sweep_dir(roots[0]))) or \
                row["run_dir"].startswith(str(sweep_dir(roots[1])))
