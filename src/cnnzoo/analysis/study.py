"""Studies: one command trains several networks under one recipe and compares them.

``cnnzoo study efficient-cnn --budget cpu`` trains the classic efficient families on CIFAR-10
(an ImageFolder copy: ``train/<class>/`` and ``test/<class>/``), every one with the recipe
``configs/_base_/studies/efficient_cnn.py`` (same data, augmentation, optimizer, schedule and
epochs), measures each network's batch-1 CPU latency, and writes the runs table
(:mod:`cnnzoo.analysis.runs`) as Markdown/CSV/JSON with the overlaid curves and the
accuracy-vs-MACs and accuracy-vs-latency charts into ``{work_dir}/{study}-{budget}/``.

The budget says how much each network gets: how many images per class of the training,
validation and test splits (a seeded, class-balanced choice, linked into the study folder,
never copied out of the source) and how many epochs. A study that stopped goes on where it
stopped when the same command runs again: finished networks are kept, an interrupted one
resumes from its last checkpoint.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import os
import random
import shutil
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from cnnzoo import rundir
from cnnzoo.analysis import runs as runs_table
from cnnzoo.analysis.report import machine_info
from cnnzoo.config import (
    config_hash,
    load_config,
    parse_cfg_options,
)
from cnnzoo.config.reader import read_config
from cnnzoo.data.datasets import dataset_root
from cnnzoo.data.images import IMAGE_EXTENSIONS
from cnnzoo.engine.checkpoint import latest_run
from cnnzoo.engine.runs import config_stem
from cnnzoo.errors import CnnzooError, ConfigError, DataError, unknown
from cnnzoo.fileio import atomic_write


@dataclasses.dataclass(frozen=True)
class Budget:
    """What each network of a study trains on: images per class of each split (``None``:
    all of the source's) and epochs."""

    epochs: int
    train_per_class: int | None
    val_per_class: int
    test_per_class: int | None
    about: str


@dataclasses.dataclass(frozen=True)
class Member:
    """One network of a study: a registered model and the size arguments it needs here."""

    model: str
    kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Study:
    """A comparison: its networks, the one recipe they share and the ImageFolder subfolder
    of ``$CNNZOO_DATA`` it reads by default."""

    title: str
    recipe: str
    members: tuple[Member, ...]
    data_folder: str


BUDGETS: dict[str, Budget] = {
    "smoke": Budget(1, 4, 2, 4, "a check that every network trains: 40 images, 1 epoch"),
    "cpu": Budget(
        2, 200, 20, 100, "a CPU, 0.2-4 min per network on one thread: 2,000 images, 2 epochs"
    ),
    "gpu": Budget(
        30, None, 500, None, "one GPU: 45,000 training and all 10,000 test images, 30 epochs"
    ),
}

STUDIES: dict[str, Study] = {
    "efficient-cnn": Study(
        title="Efficient CNNs on CIFAR-10 at 32x32, one recipe",
        recipe="_base_/studies/efficient_cnn.py",
        members=(
            Member("mobilenetv1_100"),
            Member("mobilenet_v2"),
            Member("shufflenet_v1_g3"),
            Member("shufflenet_v2_x1_0"),
            Member("squeezenet1_1"),
            Member("xception"),
            Member("resnext50_32x4d"),
            Member("se_resnet18"),
            Member("repvgg_a0"),
            Member("efficientnet_b0"),
            # Mixer-S/16's depth with 4x4 patches of a 32x32 image (64 tokens) and a quarter of
            # its width: 224x224 inputs would cost 50x the MACs of the others
            Member(
                "mixer_s16_224",
                dict(img_size=32, patch_size=4, embed_dim=128, token_hidden=64, channel_hidden=512),
            ),
            Member("resnet20"),  # the classic CIFAR ResNet, as a reference
        ),
        data_folder="cifar10-jpeg",
    ),
}

SPLITS = ("train", "val", "test")
LATENCY_REPEATS = 20  # timings of each network's latency and throughput


def get_study(name: str) -> Study:
    if name not in STUDIES:
        raise unknown("study", name, STUDIES)
    return STUDIES[name]


def get_budget(name: str) -> Budget:
    if name not in BUDGETS:
        raise unknown("budget", name, BUDGETS)
    return BUDGETS[name]


def select_members(study: Study, patterns: Sequence[str] = ()) -> list[Member]:
    """The study's networks whose model names match one of ``patterns`` (all without any)."""
    if not patterns:
        return list(study.members)
    chosen = [m for m in study.members if any(fnmatch.fnmatch(m.model, p) for p in patterns)]
    if not chosen:
        names = ", ".join(m.model for m in study.members)
        raise ConfigError(f"no network of this study matches {' '.join(patterns)}; it has {names}")
    return chosen


# --- the data subset ------------------------------------------------------------------------


def _images(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
    )


def make_subset(
    source: str | os.PathLike, dest: str | os.PathLike, budget: Budget, seed: int = 0
) -> Path:
    """Link a class-balanced subset of the ImageFolder ``source`` into ``dest``: per class,
    ``budget.val_per_class`` images of ``source/train`` into ``val/``, the next
    ``budget.train_per_class`` (None: the rest) into ``train/``, and
    ``budget.test_per_class`` of ``source/test`` into ``test/``, chosen by a permutation
    seeded by ``seed`` and the class name. ``dest/subset.json`` records what was chosen; a
    ``dest`` that already holds this choice is kept as it is."""
    source, dest = Path(source).expanduser().resolve(), Path(dest)
    for split in ("train", "test"):
        if not (source / split).is_dir():
            raise DataError(
                f"{source} holds no {split}/ folder; a study reads a CIFAR-10 ImageFolder "
                f"(train/<class>/*.jpg and test/<class>/*.jpg): pass --data DIR or set CNNZOO_DATA"
            )
    classes = sorted(p.name for p in (source / "train").iterdir() if p.is_dir())
    if not classes:
        raise DataError(f"{source}/train holds no class folders")
    want = dict(source=str(source), seed=seed, budget=dataclasses.asdict(budget), classes=classes)
    manifest = dest / "subset.json"
    try:
        if json.loads(manifest.read_text()) == want:
            return dest
    except (OSError, ValueError):
        pass
    if dest.exists():
        shutil.rmtree(dest)
    for name in classes:
        rng = random.Random(f"{seed}/{name}")
        pool = _images(source / "train" / name)
        rng.shuffle(pool)
        n_val = budget.val_per_class
        n_train = budget.train_per_class
        test = _images(source / "test" / name) if (source / "test" / name).is_dir() else []
        rng.shuffle(test)
        picks = dict(
            val=pool[:n_val],
            train=pool[n_val : None if n_train is None else n_val + n_train],
            test=test[: budget.test_per_class],
        )
        for split, files in picks.items():
            if not files:
                raise DataError(
                    f"{source}: class {name} has too few images for the {split} split of this "
                    "budget; choose a smaller budget or a complete copy of the data"
                )
            folder = dest / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for file in files:
                _link(file, folder / file.name)
    atomic_write(manifest, lambda f: f.write(json.dumps(want, indent=1)), binary=False)
    return dest


def _link(src: Path, dst: Path) -> None:
    try:
        os.symlink(src, dst)
    except OSError:  # a file system without symbolic links
        shutil.copyfile(src, dst)


# --- running ----------------------------------------------------------------------------------


def default_data(study: Study) -> Path:
    """Where a study reads its ImageFolder when no --data is given: the study's named
    subfolder of the data folder (``$CNNZOO_DATA``, else ``~/.cache/cnnzoo/data``), as
    ``data.folder`` names it for ``cnnzoo train``."""
    return dataset_root("imagefolder", None, study.data_folder)


def member_config(
    study: Study,
    member: Member,
    *,
    data: Path,
    epochs: int,
    work_dir: Path,
    cfg_options: Iterable[str] | Mapping[str, Any] = (),
):
    """The resolved config one network of the study trains with (the recipe, the network,
    the subset, the budget's epochs, then the user's ``cfg_options``)."""
    options: dict[str, Any] = {
        "model.type": member.model,
        **{f"model.{k}": v for k, v in member.kwargs.items()},
        "data.root": str(data),
        "train_cfg.max_epochs": epochs,
        "work_dir": str(work_dir),
    }
    options.update(parse_cfg_options(cfg_options))
    cfg = load_config(study.recipe, options)
    # as plain data: runs are then filed under {model}_{dataset}/, not under the recipe's name
    return load_config(cfg.to_dict(), source=f"the {member.model} config of the study")


def _same_config(run: Path | None, cfg) -> bool:
    """``run`` trains ``cfg`` (not, say, the same network under another budget)."""
    if run is None:
        return False
    try:
        return config_hash(read_config(rundir.config_file(run))) == config_hash(cfg)
    except (CnnzooError, TypeError, OSError):
        return False


def measure_latency(cfg, run: Path) -> None:
    """Write ``run/speed.json``: the median batch-1 CPU latency of the run's network (fused
    first where it re-parameterises, as it would be deployed) and its throughput at batch 32,
    each with its spread; a warning when a spread is too wide to trust."""
    import torch

    from cnnzoo.analysis.speed import measure_speed, unsteady, unsteady_warning
    from cnnzoo.models import create_model
    from cnnzoo.models._reparam import reparameterize_model

    kwargs = {k: v for k, v in cfg.model.items() if k != "type"}
    model = reparameterize_model(create_model(cfg.model.type, **kwargs).eval())
    size = runs_table.input_size(cfg.model, cfg.data)
    with torch.inference_mode():
        speed = measure_speed(model, size, batch_size=32, device="cpu", repeats=LATENCY_REPEATS)
    timings = unsteady(f"{cfg.model.type} CPU", speed)
    if timings:
        remedy = f"delete {run / runs_table.SPEED_FILE} and run the study again on a quiet machine"
        warnings.warn(unsteady_warning(timings, LATENCY_REPEATS, remedy), stacklevel=2)
    speed.update(input_size=list(size), threads=torch.get_num_threads())
    text = json.dumps(speed, indent=2)
    atomic_write(run / runs_table.SPEED_FILE, lambda f: f.write(text), binary=False)


def run_study(
    name: str,
    budget: str = "cpu",
    *,
    data: str | os.PathLike | None = None,
    work_dir: str | os.PathLike = "runs/studies",
    models: Sequence[str] = (),
    epochs: int | None = None,
    cfg_options: Iterable[str] | Mapping[str, Any] = (),
    quiet: bool = True,
    command: str = "",
    say: Callable[[str], None] = print,
) -> Path:
    """Train every selected network of study ``name`` under ``budget`` (``epochs`` replaces
    the budget's epochs), then write the study's table and charts; returns the study folder."""
    from cnnzoo.engine.trainer import train

    study, plan = get_study(name), get_budget(budget)
    if epochs is not None:
        if epochs < 1:
            raise ConfigError(f"--epochs must be at least 1, got {epochs}")
        plan = dataclasses.replace(plan, epochs=epochs)
    members = select_members(study, models)
    out = Path(work_dir).expanduser() / f"{name}-{budget}"
    subset = make_subset(data or default_data(study), out / "data", plan)
    runs: list[Path] = []
    for i, member in enumerate(members, 1):
        cfg = member_config(
            study,
            member,
            data=subset,
            epochs=plan.epochs,
            work_dir=out / "runs",
            cfg_options=cfg_options,
        )
        latest = latest_run(out / "runs" / config_stem(cfg))
        if not _same_config(latest, cfg):
            latest = None  # another budget or --cfg-options: a new run
        if latest is not None and rundir.paths(latest).summary.is_file():
            say(f"[{i}/{len(members)}] {member.model}: trained already ({latest})")
            run = latest
        else:
            say(f"[{i}/{len(members)}] {member.model}" + (f": resuming {latest}" if latest else ""))
            run = train(cfg, resume=latest, quiet=quiet)
        if not (run / runs_table.SPEED_FILE).is_file():
            measure_latency(cfg, run)
        runs.append(run)
    rows = runs_table.sort_runs([runs_table.read_run(r) for r in runs], "-test_top1")
    write_study_report(out, rows, study=study, budget=budget, plan=plan, command=command)
    return out


def write_study_report(
    out: Path, rows: list[dict[str, Any]], *, study: Study, budget: str, plan: Budget, command: str
) -> dict[str, Path]:
    """``table.md`` (the table with the study, budget, recipe, machine and command),
    ``table.csv``, ``table.json``, ``curves.png``, ``pareto_macs.png``, ``pareto_latency.png``."""
    machine = machine_info()
    for row in rows:  # the run column relative to the study folder
        row["run"] = os.path.relpath(row["run"], out)
    sizes = ", ".join(
        f"{s} {'all' if n is None else n}/class"
        for s, n in zip(
            SPLITS, (plan.train_per_class, plan.val_per_class, plan.test_per_class), strict=True
        )
    )
    gpu = f", {machine['gpu']}" if machine.get("gpu") else ""
    head = [
        f"# {study.title}",
        "",
        f"- budget `{budget}`: {plan.epochs} epoch(s); images {sizes} ({plan.about})",
        f"- recipe: `configs/{study.recipe}` for every network; latency: batch 1, CPU, median",
        f"- machine: {machine['cpu']}, {machine['cpu_count']} cores{gpu}, torch {machine['torch']}",
    ]
    if command:
        head.append(f"- command: `{command}`")
    written = {
        "md": runs_table.write_text(
            out / "table.md", "\n".join(head) + "\n\n" + runs_table.format_runs(rows, "md")
        ),
        "csv": runs_table.write_text(out / "table.csv", runs_table.format_runs(rows, "csv")),
        "json": runs_table.write_text(out / "table.json", runs_table.format_runs(rows, "json")),
    }
    from cnnzoo.analysis import plots  # matplotlib only once charts are drawn

    charts = dict(
        curves=plots.plot_curves(rows, out / rundir.CURVES),
        pareto_macs=plots.plot_pareto(rows, out / "pareto_macs.png", "macs", title=study.title),
        pareto_latency=plots.plot_pareto(
            rows, out / "pareto_latency.png", "latency_ms", title=study.title
        ),
    )
    written.update({k: v for k, v in charts.items() if v is not None})
    return written
