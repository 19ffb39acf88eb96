"""The run directory: every path in a run, the one test of what a run is, and its lock.

A run is ``{work_dir}/{config stem}/{timestamp}/``, made with its ``checkpoints/`` folder at
once, so ``checkpoints/`` is what marks a run directory. It keeps ``config.yaml`` (the
resolved config it started with) and, for each resume that changed the config,
``config.resume-N.yaml``; none is ever overwritten, and the latest is the config ``cnnzoo
train --resume RUN`` continues with. While a process trains in it, ``train.lock`` holds an
exclusive lock (``flock``, which the kernel drops when the process dies) and that process's
id; it is removed when the run ends. ``origin.json`` records how the run was started: the
config's name and the ``--cfg-options`` of the start and of each resume (:func:`record_origin`,
read back by :func:`read_origin` for the runs table).

This is the only module that spells the names of a run's files (``tests/test_rundir.py``
checks it); everything else asks :class:`RunPaths` or the functions here.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import stat
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from cnnzoo.errors import CheckpointError, CnnzooError, TrainingError
from cnnzoo.fileio import atomic_write, open_regular

CONFIG = "config.yaml"  # the resolved config the run started with
RESUME_CONFIG = re.compile(r"config\.resume-([1-9][0-9]*)\.yaml")  # a resume that changed it
METRICS = "metrics.csv"
SUMMARY = "summary.json"
SUMMARY_MD = "summary.md"
STATUS = "status.json"  # how a run that ended early ended: written by the trainer
LOG = "train.log"
ORIGIN = "origin.json"  # the config name and --cfg-options of the start and of each resume
LOCK = "train.lock"
CHECKPOINTS = "checkpoints"
LAST = "last.pt"
BEST = "best.pt"
CURVES = "curves.png"  # also the overlaid curves of a folder of runs (runs --plot, study)
CONFUSION = "confusion.png"
TENSORBOARD = "tb"
SPEED = "speed.json"  # {"latency_ms": ..., "device": ...}: written by `cnnzoo study`
TEST_REPORT = "test_report"  # test_report.json/.md, test_report-<data name>.json/.md
EXPORT = "export"
EXPLAIN = "explain"
LEGACY_CONFIG = "config.py"  # what cnnzoo before 0.1 kept instead of config.yaml; not read


@dataclass(frozen=True)
class RunPaths:
    """Every path in the run at ``root`` (nothing is checked or created)."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def config(self) -> Path:
        return self.root / CONFIG

    def resume_config(self, n: int) -> Path:
        return self.root / f"config.resume-{n}.yaml"

    @property
    def metrics(self) -> Path:
        return self.root / METRICS

    @property
    def summary(self) -> Path:
        return self.root / SUMMARY

    @property
    def summary_md(self) -> Path:
        return self.root / SUMMARY_MD

    @property
    def status(self) -> Path:
        return self.root / STATUS

    @property
    def log(self) -> Path:
        return self.root / LOG

    @property
    def lock(self) -> Path:
        return self.root / LOCK

    @property
    def origin(self) -> Path:
        return self.root / ORIGIN

    @property
    def checkpoints(self) -> Path:
        return self.root / CHECKPOINTS

    @property
    def last(self) -> Path:
        return self.checkpoints / LAST

    @property
    def best(self) -> Path:
        return self.checkpoints / BEST

    @property
    def curves(self) -> Path:
        return self.root / CURVES

    @property
    def confusion(self) -> Path:
        return self.root / CONFUSION

    @property
    def tensorboard(self) -> Path:
        return self.root / TENSORBOARD

    @property
    def speed(self) -> Path:
        return self.root / SPEED

    def test_report(self, data_name: str | None = None) -> Path:
        """``test_report`` (no suffix: .json and .md are written), per data set if named."""
        return self.root / (TEST_REPORT + (f"-{data_name}" if data_name else ""))

    @property
    def export(self) -> Path:
        return self.root / EXPORT

    @property
    def explain(self) -> Path:
        return self.root / EXPLAIN


def paths(run_dir: str | os.PathLike) -> RunPaths:
    return RunPaths(Path(run_dir))


def is_run_dir(path: str | os.PathLike) -> bool:
    """A folder ``cnnzoo train`` made: it holds ``checkpoints/`` (made with the run)."""
    return paths(path).checkpoints.is_dir()


def find_runs(folder: Path) -> list[Path]:
    """The run directories under ``folder`` (searched to any depth), in path order."""
    return [p.parent for p in sorted(folder.rglob(CHECKPOINTS)) if is_run_dir(p.parent)]


def run_dir_of(target: str | os.PathLike) -> Path:
    """The run directory of a run directory, or of a checkpoint file in ``<run>/checkpoints/``."""
    target = Path(target)
    if not target.exists():
        raise CheckpointError(
            f"{target} does not exist: give a run directory (runs/CONFIG/TIMESTAMP) or one of "
            f"its checkpoints"
        )
    if target.is_dir():
        return target
    return target.parent.parent if target.parent.name == CHECKPOINTS else target.parent


def is_config_name(name: str) -> bool:
    """``name`` is that of a resolved config a run directory keeps."""
    return name == CONFIG or RESUME_CONFIG.fullmatch(name) is not None


def config_file(run_dir: str | os.PathLike) -> Path | None:
    """The resolved config a run directory trains with now: its latest
    ``config.resume-N.yaml`` (a resume that changed the config), else ``config.yaml``, or
    None."""
    run_dir = Path(run_dir)
    resumes = [
        (int(m[1]), p)
        for p in (run_dir.glob("config.resume-*.yaml") if run_dir.is_dir() else ())
        if (m := RESUME_CONFIG.fullmatch(p.name)) and p.is_file()
    ]
    if resumes:
        return max(resumes)[1]
    first = paths(run_dir).config
    return first if first.is_file() else None


def require_config(run_dir: str | os.PathLike) -> Path:
    """:func:`config_file`, or one line saying what the run lacks and what to do."""
    found = config_file(run_dir)
    if found is not None:
        return found
    if (Path(run_dir) / LEGACY_CONFIG).is_file():
        raise CheckpointError(
            f"{run_dir} keeps its config as {LEGACY_CONFIG}, the run format of cnnzoo before "
            f"0.1, which this cnnzoo does not read: train it again, or pass a config file"
        )
    raise CheckpointError(f"{run_dir} holds no {CONFIG}; is it a cnnzoo run directory?")


def next_resume_config(run_dir: str | os.PathLike) -> Path:
    """The first ``config.resume-N.yaml`` not yet in the run (N = 1, 2, ...)."""
    run = paths(run_dir)
    n = 1
    while run.resume_config(n).exists():
        n += 1
    return run.resume_config(n)


def checkpoint(target: str | os.PathLike) -> Path:
    """The checkpoint file of ``target``: itself if a file, else the run's best.pt (or last.pt)."""
    target = Path(target)
    if target.is_file():
        return target
    if not target.is_dir():
        raise CheckpointError(f"{target} is neither a run directory nor a checkpoint file")
    run = paths(target)
    for path in (run.best, run.last):
        if path.is_file():
            return path
    raise CheckpointError(
        f"{target} holds no {CHECKPOINTS}/{BEST} or {LAST}; is it a cnnzoo run directory?"
    )


def latest_run(parent: Path, check: Callable[[Path], object] | None = None) -> Path | None:
    """The newest run directory under ``parent`` to resume (what ``--resume auto`` takes), or
    None. ``check(last.pt)`` raises a :class:`CnnzooError` for a checkpoint that cannot be
    resumed: such a run is reported and passed over, never taken as the latest; a run that
    stopped before its first checkpoint is taken (it starts over in its own directory)."""
    for run in sorted((p for p in parent.glob("*") if is_run_dir(p)), reverse=True):
        last = paths(run).last
        if check is None or not last.is_file():
            return run
        try:
            check(last)
            return run
        except CnnzooError as e:
            print(f"note: passing over {run}: {e}")
    return None


def create(parent: Path) -> Path:
    """A new, empty run directory (with ``checkpoints/``) under ``parent``, named by the time."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for i in range(1000):
        run_dir = parent / (stamp if i == 0 else f"{stamp}-{i}")
        try:
            paths(run_dir).checkpoints.mkdir(parents=True, exist_ok=False)
            return run_dir
        except FileExistsError:
            continue
        except OSError as e:
            raise TrainingError(
                f"cannot create run directory {run_dir}: {e.strerror}; choose another --work-dir"
            ) from None
    raise TrainingError(f"cannot create a new run directory under {parent}")


# --- the lock held while a run trains ----------------------------------------------------


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold ``run_dir``'s training lock while the block runs, then remove the lock file.

    Another process that holds it is named in one line; the lock of a process that died is
    released by the kernel, so it is taken over. The lock file is untrusted like everything
    in a run directory: it is never opened through a symbolic link, and anything but a
    regular file there (a folder, a FIFO, a device) is refused with one line, so the lock
    never writes into a file it did not create."""
    path = paths(run_dir).lock
    fd = _open_lock(path)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = os.read(fd, 64).decode(errors="replace").strip() or "another process"
            raise TrainingError(
                f"{run_dir} is being trained by process {other} (it holds {path}); wait for it "
                "to end or stop it, then resume"
            ) from None
        if not _same_file(path, fd):  # removed or replaced while we waited for the lock
            raise TrainingError(f"{path} changed while it was being locked; run the command again")
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        yield
        with contextlib.suppress(OSError):  # the run is over: no lock is left behind
            if _same_file(path, fd):
                path.unlink()
    finally:
        os.close(fd)  # closing drops the lock


def _open_lock(path: Path) -> int:
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as e:
        if e.errno == errno.ELOOP:
            why = "is a symbolic link; cnnzoo writes its lock only into a file it created"
        elif e.errno == errno.EISDIR:
            why = "is a folder"
        else:
            why = f"cannot be opened ({e.strerror})"
        raise TrainingError(f"{path} {why}: remove it, then run the command again") from None
    kind = os.fstat(fd).st_mode
    if not stat.S_ISREG(kind):
        os.close(fd)
        what = "a FIFO" if stat.S_ISFIFO(kind) else "not a regular file"
        raise TrainingError(f"{path} is {what}: remove it, then run the command again")
    return fd


def _same_file(path: Path, fd: int) -> bool:
    """``path`` is still the file ``fd`` has open (not removed, not replaced)."""
    try:
        here, held = os.lstat(path), os.fstat(fd)
    except OSError:
        return False
    return (here.st_dev, here.st_ino) == (held.st_dev, held.st_ino)


# ---- how the run was started ----------------------------------------------------------------

ORIGIN_FORMAT = 1
MAX_ORIGIN_BYTES = 1 << 20
MAX_OPTIONS = 1000  # options per start or resume, and resumes per run
MAX_OPTION_CHARS = 10_000


def read_origin(run_dir: str | os.PathLike) -> dict:
    """The run's ``origin.json``: ``{"format": 1, "config": NAME, "overrides": [K=V, ...],
    "resumes": [[K=V, ...], ...]}`` (``overrides`` None when the start's are not known: the
    record was made at a resume of an older run). Raises FileNotFoundError when there is none
    and ValueError naming what is wrong when it is not such a record (it is read back from
    disk: untrusted, any size, maybe a FIFO)."""
    with open_regular(paths(run_dir).origin, "rb") as f:
        raw = f.read(MAX_ORIGIN_BYTES + 1)
    if len(raw) > MAX_ORIGIN_BYTES:
        raise ValueError(f"larger than {MAX_ORIGIN_BYTES} bytes")
    record = json.loads(raw.decode("utf-8"))
    if not isinstance(record, dict) or record.get("format") != ORIGIN_FORMAT:
        raise ValueError(f"not an origin record of format {ORIGIN_FORMAT}")
    name = record.get("config")
    if not isinstance(name, str) or not 0 < len(name) <= 255:
        raise ValueError("'config' is not a name")
    if record.get("overrides") is not None:
        _check_options(record["overrides"], "'overrides'")
    resumes = record.get("resumes")
    if not isinstance(resumes, list) or len(resumes) > MAX_OPTIONS:
        raise ValueError("'resumes' is not a list of option lists")
    for options in resumes:
        _check_options(options, "a resume's options")
    return {"config": name, "overrides": record.get("overrides"), "resumes": resumes}


def _check_options(options: object, what: str) -> None:
    if not isinstance(options, list) or len(options) > MAX_OPTIONS:
        raise ValueError(f"{what} is not a list of KEY=VALUE strings")
    for option in options:
        if not isinstance(option, str) or len(option) > MAX_OPTION_CHARS:
            raise ValueError(f"{what} is not a list of KEY=VALUE strings")


def record_origin(
    run_dir: str | os.PathLike, config: str, overrides: Sequence[str], *, resumed: bool
) -> Path:
    """Write ``origin.json`` (atomically): a new run records ``config`` and its ``overrides``;
    a resume adds its ``overrides`` to the run's record, which it starts (the start's options
    unknown) when the run has none or a damaged one."""
    options = [str(o) for o in overrides]
    record = {"format": ORIGIN_FORMAT, "config": config, "overrides": options, "resumes": []}
    if resumed:
        try:
            record = {"format": ORIGIN_FORMAT, **read_origin(run_dir)}
        except (OSError, ValueError, RecursionError):
            record["overrides"] = None
        record["resumes"] = [*record["resumes"], options][-MAX_OPTIONS:]
    text = json.dumps(record, indent=2) + "\n"
    return atomic_write(paths(run_dir).origin, lambda f: f.write(text), binary=False)
