"""``cnnzoo export RUN_DIR``: a trained run to an ONNX or TorchScript file, checked on real images."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import Tensor

from cnnzoo.errors import CnnzooError
from cnnzoo.export.core import FORMATS, export_model
from cnnzoo.extras import EXTRAS, require

HELP = "export a trained model to ONNX or TorchScript and check it"
CHECK_IMAGES = 32  # test images the export is checked on


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", metavar="RUN_DIR", help="a run directory or a .pt checkpoint")
    p.add_argument("--format", choices=["onnx", "torchscript"], default="onnx", help="file format")
    p.add_argument(
        "--reparameterize", action="store_true", help="fuse re-parameterisable blocks first"
    )
    p.add_argument(
        "--output", default=None, help="file or folder to write (default: RUN_DIR/export/)"
    )


def _test_images(meta: dict) -> tuple[Tensor | None, str]:
    """Up to CHECK_IMAGES images of the run's test split, prepared as in training, or None and
    why not (the data may live on another machine)."""
    from cnnzoo.config import load_config
    from cnnzoo.data import build_data

    try:
        cfg = load_config(meta["config"], source=f"the config in checkpoint {meta['path']}")
        data_cfg = dict(cfg.data)
        data_cfg.update(
            download=False,
            mean=list(meta["mean"]),
            std=list(meta["std"]),
            num_workers=0,
            test=dict(cfg.data.test, batch_size=CHECK_IMAGES),
        )
        bundle = build_data(data_cfg, device="cpu", seed=cfg.seed)
    except (CnnzooError, OSError) as e:
        return None, f"the run's data is not available ({e})"
    if bundle.test is None:
        return None, f"the {bundle.dataset} data has no test split"
    images, _ = next(iter(bundle.test))
    if len(images) < 2:
        return None, "the test split has fewer than 2 images"
    return images.float().cpu(), f"{len(images)} {bundle.dataset} test images"


def run(args: argparse.Namespace) -> int:
    """Export a trained run, check it against PyTorch, and say where it went."""
    from cnnzoo import rundir
    from cnnzoo.engine import load_trained

    if args.format == "onnx":  # before loading the run: the answer comes at once
        require(*EXTRAS["export"], purpose="cnnzoo export --format onnx")
    target = Path(args.target)
    model, meta = load_trained(target)
    if args.output:
        path = Path(args.output)
        if path.is_dir():
            path = path / f"model{FORMATS[args.format]}"
    else:
        path = rundir.paths(rundir.run_dir_of(target)).export / f"model{FORMATS[args.format]}"

    images, source = _test_images(meta)
    if images is None:
        note = source
        size = tuple(meta["image_size"])
        gen = torch.Generator().manual_seed(0)
        images = torch.randn((8, meta["in_chans"], *size), generator=gen)
        source = f"8 random images (note: {note})"
    report = export_model(
        model,
        images[:2],
        path,
        format=args.format,
        reparameterize=args.reparameterize,
        meta=meta,
        check_input=images,
    )
    print(f"exported {meta['model_name']} to {report.path} ({report.format}, {report.exporter})")
    print(f"  metadata: {report.sidecar}")
    if report.folded_bn or report.num_params != report.num_params_trained:
        print(
            f"  deploy form: {len(report.folded_bn)} BatchNorm folded into convs"
            + (", blocks re-parameterised" if report.reparameterized else "")
            + f"; {report.num_params_trained:,} -> {report.num_params:,} parameters"
        )
    for note in report.notes:
        print(f"  note: {note}")
    verdict = "matches" if report.matches else "DOES NOT MATCH"
    print(
        f"  checked on {source}: max |{report.format} - PyTorch| = {report.max_abs_diff:.3g} "
        f"(outputs up to {report.output_scale:.3g}): {verdict}"
    )
    return 0 if report.matches else 1
