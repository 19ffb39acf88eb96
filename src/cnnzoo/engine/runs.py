"""Runs and their configs: which run a config's runs go under, what a resume continues with,
and keeping each config a run trained with. The run directory itself (its files, its lock) is
:mod:`cnnzoo.rundir`.
"""

from __future__ import annotations

import os
from pathlib import Path

from mmengine.config import Config

from cnnzoo import rundir
from cnnzoo.config import config_hash, dump_config, load_config
from cnnzoo.config.reader import read_config
from cnnzoo.engine.checkpoint import latest_run
from cnnzoo.errors import CheckpointError, CnnzooError

__all__ = [
    "config_stem",
    "new_run_dir",
    "record_config",
    "resume_config",
    "resume_dir",
    "run_config",
]


def run_config(run: str | os.PathLike, cfg_options=()) -> Config:
    """The config the run at ``run`` (a run directory or its checkpoint) trains with now,
    with ``cfg_options`` applied on top."""
    run_dir = rundir.run_dir_of(run)
    return load_config(rundir.require_config(run_dir), cfg_options)


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
    if filename and not rundir.is_config_name(Path(filename).name):
        stem = Path(filename).stem
    elif filename:  # a run's own config: the run's config stem is its grandparent's name
        stem = Path(filename).resolve().parent.parent.name
    else:
        stem = f"{cfg.model.type}_{cfg.data.type}"
    return stem.strip(".") or "config"  # never '..' or '.': runs stay inside work_dir


def new_run_dir(cfg: Config) -> Path:
    """A new, empty run directory (with ``checkpoints/``) for ``cfg``."""
    return rundir.create(Path(cfg.work_dir).expanduser() / config_stem(cfg))


def resume_dir(cfg: Config | None, resume: str | os.PathLike) -> Path | None:
    """The run to continue: ``'auto'`` -> the latest of ``cfg`` (None: there is none), or the
    run directory ``resume`` names (a run directory or one of its checkpoints)."""
    if str(resume) == "auto":
        return latest_run(Path(cfg.work_dir).expanduser() / config_stem(cfg))
    run_dir = rundir.run_dir_of(resume)
    if not rundir.is_run_dir(run_dir):
        raise CheckpointError(
            f"cannot resume {resume}: it is not a run directory (it holds no {rundir.CHECKPOINTS}/)"
        )
    return run_dir


def record_config(cfg: Config, run_dir: Path) -> Path | None:
    """Keep ``cfg`` in the run: ``config.yaml`` for a new run; ``config.resume-N.yaml`` when a
    resume changes the config (the earlier files stay as they are). Returns the file written,
    or None when the run already holds this config."""
    latest = rundir.config_file(run_dir)
    if latest is None:
        return dump_config(cfg, rundir.paths(run_dir).config)
    try:
        same = config_hash(read_config(latest)) == config_hash(cfg)
    except CnnzooError:  # an unreadable earlier config is kept, the new one beside it
        same = False
    if same:
        return None
    return dump_config(cfg, rundir.next_resume_config(run_dir))
