"""Run directories: where a run lives, the configs it ran with, and the lock held while it trains.

A run is ``{work_dir}/{config stem}/{timestamp}/``. It keeps ``config.yaml`` (the resolved config
it started with) and, for each resume that changed the config, ``config.resume-N.yaml``; none is
ever overwritten, and the latest is the config ``cnnzoo train --resume RUN`` continues with.
While a process trains in it, ``train.lock`` holds an exclusive lock (``flock``, which the
kernel drops when the process dies) and that process's id; it is removed when the run ends.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import time
from pathlib import Path

from mmengine.config import Config

from cnnzoo.config import (
    RUN_CONFIG_NAMES,
    config_hash,
    dump_config,
    is_run_config_name,
    load_config,
    read_run_config,
    run_config_file,
)
from cnnzoo.engine.checkpoint import latest_run
from cnnzoo.errors import CheckpointError, CnnzooError, TrainingError

LOCK_FILE = "train.lock"
STATUS_FILE = "status.json"  # how a run that ended early ended: written by the trainer


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
    return target.parent.parent if target.parent.name == "checkpoints" else target.parent


def run_config(run: str | os.PathLike, cfg_options=()) -> Config:
    """The config the run at ``run`` (a run directory or its checkpoint) trains with now,
    with ``cfg_options`` applied on top."""
    run_dir = run_dir_of(run)
    file = run_config_file(run_dir)
    if file is None:
        raise CheckpointError(f"{run_dir} holds no config.yaml; is it a cnnzoo run directory?")
    return load_config(file, cfg_options)


def resume_config(
    config: str | os.PathLike | None,
    resume: str | os.PathLike,
    cfg_options=(),
    work_dir: str | None = None,
) -> tuple[Config, str | Path]:
    """What ``cnnzoo train [CONFIG] --resume [RUN]`` continues, by one rule for both forms:
    the run's own resolved config (its overrides included) with ``cfg_options`` on top.
    ``resume='auto'`` means the latest run of CONFIG under its ``work_dir``; when there is
    none yet, CONFIG itself (with ``cfg_options``) starts a new run. Returns the config and
    the run directory (``'auto'`` when none was found)."""
    if str(resume) == "auto":
        cfg = load_config(config, cfg_options)
        if work_dir:
            cfg.work_dir = work_dir
        run_dir = latest_run(Path(cfg.work_dir).expanduser() / config_stem(cfg))
        if run_dir is None:
            return cfg, "auto"
    else:
        run_dir = resume_dir(None, resume)
    cfg = run_config(run_dir, cfg_options)
    if work_dir:
        cfg.work_dir = work_dir
    return cfg, run_dir


def config_stem(cfg: Config) -> str:
    """The folder under ``work_dir`` that holds this config's runs."""
    filename = getattr(cfg, "filename", None)
    if filename and not is_run_config_name(Path(filename).name):
        stem = Path(filename).stem
    elif filename:  # a run's own config: the run's config stem is its grandparent's name
        stem = Path(filename).resolve().parent.parent.name
    else:
        stem = f"{cfg.model.type}_{cfg.data.type}"
    return stem.strip(".") or "config"  # never '..' or '.': runs stay inside work_dir


def new_run_dir(cfg: Config) -> Path:
    """A new, empty run directory (with ``checkpoints/``) for ``cfg``."""
    parent = Path(cfg.work_dir).expanduser() / config_stem(cfg)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for i in range(1000):
        run_dir = parent / (stamp if i == 0 else f"{stamp}-{i}")
        try:
            (run_dir / "checkpoints").mkdir(parents=True, exist_ok=False)
            return run_dir
        except FileExistsError:
            continue
        except OSError as e:
            raise TrainingError(
                f"cannot create run directory {run_dir}: {e.strerror}; choose another --work-dir"
            ) from None
    raise TrainingError(f"cannot create a new run directory under {parent}")


def resume_dir(cfg: Config | None, resume: str | os.PathLike) -> Path | None:
    """The run to continue: ``'auto'`` -> the latest of ``cfg`` (None: there is none), or the
    run directory ``resume`` names (a run directory or one of its checkpoints)."""
    if str(resume) == "auto":
        return latest_run(Path(cfg.work_dir).expanduser() / config_stem(cfg))
    run_dir = run_dir_of(resume)
    if not (run_config_file(run_dir) or (run_dir / "checkpoints").is_dir()):
        raise CheckpointError(
            f"cannot resume {resume}: it is not a run directory (no config.yaml, no checkpoints/)"
        )
    return run_dir


def record_config(cfg: Config, run_dir: Path) -> Path | None:
    """Keep ``cfg`` in the run: ``config.yaml`` for a new run; ``config.resume-N.yaml`` when a
    resume changes the config (the earlier files stay as they are). Returns the file written,
    or None when the run already holds this config."""
    latest = run_config_file(run_dir)
    if latest is None:
        return dump_config(cfg, run_dir / RUN_CONFIG_NAMES[0])
    try:
        same = config_hash(read_run_config(latest)) == config_hash(cfg)
    except CnnzooError:  # an unreadable earlier config is kept, the new one beside it
        same = False
    if same:
        return None
    n = 1
    while (run_dir / f"config.resume-{n}.yaml").exists():
        n += 1
    return dump_config(cfg, run_dir / f"config.resume-{n}.yaml")


@contextlib.contextmanager
def run_lock(run_dir: Path):
    """Hold ``run_dir``'s training lock while the block runs, then remove the lock file.

    Another process that holds it is named in one line; the lock of a process that died is
    released by the kernel, so it is taken over. The lock file is untrusted like everything
    in a run directory: it is never opened through a symbolic link, and anything but a
    regular file there (a folder, a FIFO, a device) is refused with one line, so the lock
    never writes into a file it did not create."""
    path = run_dir / LOCK_FILE
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
