"""The ``cnnzoo`` command line.

Each subcommand's work lives beside the code it drives; this module only parses
arguments and turns user errors into one clear line and exit status 2 (3 when memory runs
out, 128 + the signal number when Ctrl-C, SIGTERM or SIGHUP stopped a run: 130, 143, 129).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import sys
import warnings

from cnnzoo.errors import CnnzooError, Interrupted


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="cnnzoo",
        description="Classic image-classification networks: build, explain, train, evaluate, export.",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    s = sub.add_parser("models", help="list registered models with params, MACs, family and paper")
    s.add_argument(
        "pattern", nargs="?", default="*", help="shell-style name pattern, e.g. 'resnet*'"
    )
    s.add_argument("--family", help="only this family")
    s.set_defaults(handler="cnnzoo.analysis.commands:cmd_models")

    s = sub.add_parser("summary", help="per-layer output shapes and parameters of one model")
    s.add_argument("name")
    s.add_argument("--input", default=None, help="CxHxW, e.g. 3x32x32 (default: the model's own)")
    s.add_argument("--num-classes", type=int, default=None)
    s.add_argument("--depth", type=int, default=None, help="only modules up to this nesting depth")
    s.set_defaults(handler="cnnzoo.analysis.commands:cmd_summary")

    s = sub.add_parser(
        "compare", help="params, MACs, latency and throughput of several models side by side"
    )
    s.add_argument("names", nargs="+")
    s.add_argument("--input", default="3x224x224", help="CxHxW")
    s.add_argument("--num-classes", type=int, default=1000)
    s.add_argument("--batch-size", type=int, default=8)
    s.add_argument(
        "--device", default="auto", help="cpu, cuda or auto (both where a GPU is present)"
    )
    s.add_argument("--chart", default="compare.png", help="where to write the PNG chart")
    s.set_defaults(handler="cnnzoo.analysis.commands:cmd_compare")

    s = sub.add_parser(
        "train", help="train a model from a config (no config: the offline quick start)"
    )
    s.add_argument("config", nargs="?", default=None)
    s.add_argument(
        "--cfg-options", nargs="+", default=[], metavar="KEY=VALUE", help="override config keys"
    )
    s.add_argument(
        "--resume",
        nargs="?",
        const="auto",
        default=None,
        metavar="RUN_DIR",
        help="resume the latest run of this config, or RUN_DIR",
    )
    s.add_argument(
        "--work-dir", default=None, help="parent folder of run directories (default: runs/)"
    )
    s.add_argument(
        "--gpus", type=int, default=None, help="launch torchrun with this many processes"
    )
    s.add_argument("--quiet", action="store_true", help="one line per epoch, no progress bars")
    s.set_defaults(handler="cnnzoo.engine.commands:cmd_train")

    s = sub.add_parser("test", help="evaluate a run directory or checkpoint on its test split")
    s.add_argument("target", metavar="RUN_DIR|CHECKPOINT")
    s.add_argument("--data", default=None, help="data root to evaluate on (default: the run's)")
    s.add_argument("--cfg-options", nargs="+", default=[], metavar="KEY=VALUE")
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(handler="cnnzoo.engine.commands:cmd_test")

    s = sub.add_parser(
        "predict", help="top-k classes of images, from a run directory or exported model"
    )
    s.add_argument("target", metavar="RUN_DIR|MODEL_FILE")
    s.add_argument("images", nargs="+")
    s.add_argument("--topk", type=int, default=5)
    s.set_defaults(handler="cnnzoo.engine.commands:cmd_predict")

    s = sub.add_parser("export", help="export a trained model to ONNX or TorchScript and check it")
    s.add_argument("target", metavar="RUN_DIR")
    s.add_argument("--format", choices=["onnx", "torchscript"], default="onnx")
    s.add_argument(
        "--reparameterize", action="store_true", help="fuse re-parameterisable blocks first"
    )
    s.add_argument("--output", default=None)
    s.set_defaults(handler="cnnzoo.export:cmd_export")
    return p


OUT_OF_MEMORY_EXIT = 3


def _out_of_memory(e: BaseException) -> bool:
    """A host or device allocation failure (torch.OutOfMemoryError is a RuntimeError; a failed
    CPU allocation is a plain RuntimeError from the allocator)."""
    if isinstance(e, MemoryError) or type(e).__name__ == "OutOfMemoryError":
        return True
    text = str(e)
    return "out of memory" in text or "can't allocate memory" in text


@contextlib.contextmanager
def _one_line_warnings(command: str):
    """Warnings print as ``cnnzoo CMD: warning: ...`` (not file:line plus a source line)."""
    previous = warnings.formatwarning
    warnings.formatwarning = lambda message, *_, **__: f"cnnzoo {command}: warning: {message}\n"
    try:
        yield
    finally:
        warnings.formatwarning = previous


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    module, func = args.handler.split(":")
    try:
        with _one_line_warnings(args.command):
            return int(getattr(importlib.import_module(module), func)(args) or 0)
    except CnnzooError as e:
        print(f"cnnzoo {args.command}: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM / SIGHUP during training
        stop = e if isinstance(e, Interrupted) else Interrupted()
        print(f"cnnzoo {args.command}: {stop}", file=sys.stderr)
        return stop.exit_code
    except (MemoryError, RuntimeError) as e:
        if not _out_of_memory(e):
            raise
        first_line = (str(e).strip().splitlines() or [type(e).__name__])[0]
        print(
            f"cnnzoo {args.command}: error: out of memory ({first_line[:200]}). Lower "
            "data.train.batch_size (and data.val/test batch_size), the input size or the model; "
            "on a GPU, amp.enabled=True also halves the activations. The last checkpoint, if any, "
            "is intact: add --resume after the change.",
            file=sys.stderr,
        )
        return OUT_OF_MEMORY_EXIT
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
