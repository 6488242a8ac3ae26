"""`edgefkd export` and `edgefkd list-models`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer


def register(app: typer.Typer) -> None:
    app.command("export")(export)
    app.command("list-models")(list_models)


def export(
    checkpoint: Annotated[Path, typer.Argument(help="Student checkpoint: state_dict/.pt/.pth (needs --arch), TorchScript, or torch.export .pt2.")],
    arch: Annotated[Optional[str], typer.Option(help="Registered architecture (see list-models), path/to/file.py:factory or package.module:factory.")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Output directory [default: export/<name>/].")] = None,
    name: Annotated[Optional[str], typer.Option(help="Model name [default: checkpoint file stem].")] = None,
    formats: Annotated[str, typer.Option(help="Comma-separated format names (see list-formats), e.g. onnx,openvino,ort,tensorrt.")] = "onnx,openvino",
    precisions: Annotated[str, typer.Option(help="Comma-separated: fp32,fp16,int8.")] = "fp32,fp16",
    non_strict: Annotated[bool, typer.Option("--non-strict", help="Load even with missing/unexpected keys (they are still printed).")] = False,
    input_size: Annotated[Optional[str], typer.Option(help="HxW, e.g. 112x112 or 112x96 [default: the architecture's].")] = None,
    mean: Annotated[Optional[str], typer.Option(help="Per-channel mean in 0-255 units, model channel order: '127.5' or 'r,g,b'.")] = None,
    std: Annotated[Optional[str], typer.Option(help="Per-channel std in 0-255 units.")] = None,
    channel_order: Annotated[Optional[str], typer.Option(help="rgb or bgr: the order the model expects.")] = None,
    opset: Annotated[int, typer.Option(help="ONNX opset.")] = 17,
    exporter: Annotated[str, typer.Option(help="dynamo (torch.export based) or legacy (TorchScript based); the other is tried on failure.")] = "dynamo",
    no_simplify: Annotated[bool, typer.Option("--no-simplify", help="Skip onnxsim.")] = False,
    fold_preprocess: Annotated[bool, typer.Option("--fold-preprocess", help="Bake uint8 NHWC -> normalised NCHW into the graph.")] = False,
    calib: Annotated[Optional[str], typer.Option(help="Calibration source for INT8: face folder, insightface .bin, .npy, or 'synthetic' [default: calib_data/].")] = None,
    calib_method: Annotated[str, typer.Option(help="INT8 activation ranges for the Q/DQ ONNX: minmax, percentile or entropy.")] = "minmax",
    calib_count: Annotated[int, typer.Option(help="Calibration faces to use.")] = 256,
    keep_fp: Annotated[Optional[list[str]], typer.Option(help="Node name glob, op type, or re:REGEX to keep in float for INT8 (repeatable).")] = None,
    accuracy_aware: Annotated[bool, typer.Option("--accuracy-aware", help="INT8: keep verification accuracy on --pairs within --max-acc-drop (ONNX: revert harmful layers; OpenVINO: NNCF accuracy control).")] = False,
    pairs: Annotated[Optional[Path], typer.Option(help="Verification pairs for --accuracy-aware (CSV, LFW pairs.txt, insightface .bin).")] = None,
    max_acc_drop: Annotated[float, typer.Option(help="--accuracy-aware bound, percentage points of 10-fold accuracy.")] = 1.0,
    val_images: Annotated[Optional[Path], typer.Option(help="Folder of aligned faces to validate artifacts on [default: the calibration source, else generated].")] = None,
    no_validate: Annotated[bool, typer.Option("--no-validate", help="Skip comparing the artifacts with PyTorch: they are kept unchecked and the manifest says so.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite a non-empty output directory.")] = False,
    min_batch: Annotated[int, typer.Option(help="TensorRT profile: min batch.")] = 1,
    opt_batch: Annotated[int, typer.Option(help="TensorRT profile: opt batch.")] = 8,
    max_batch: Annotated[int, typer.Option(help="TensorRT profile: max batch.")] = 32,
    workspace: Annotated[int, typer.Option(help="TensorRT workspace (MiB).")] = 1024,
    dla_core: Annotated[Optional[int], typer.Option(help="TensorRT: Jetson DLA core (GPU fallback allowed).")] = None,
    ort_target: Annotated[str, typer.Option(help="ONNX Runtime Mobile (.ort): optimise for arm (phones, ARM boards) or amd64.")] = "arm",
) -> None:
    """Export a student checkpoint to every format asked for (see list-formats), validated against PyTorch."""
    from ..exporters.pipeline import ExportOptions, run_export
    from ..report.console import console, export_table

    opts = ExportOptions(
        checkpoint=checkpoint, arch=arch, out=out, name=name, formats=[formats], precisions=[precisions],
        strict=not non_strict, input_size=input_size, mean=mean, std=std, channel_order=channel_order,
        opset=opset, exporter=exporter, simplify=not no_simplify, fold_preprocess=fold_preprocess,
        calib=calib, calib_method=calib_method, calib_count=calib_count, keep_fp=keep_fp or (),
        accuracy_aware=accuracy_aware, pairs=pairs, max_acc_drop=max_acc_drop,
        val_images=val_images, validate=not no_validate, force=force,
        tensorrt={"min_batch": min_batch, "opt_batch": opt_batch, "max_batch": max_batch,
                  "workspace_mib": workspace, "dla_core": dla_core},
        ort_target=ort_target,
    )
    report = run_export(opts, log=lambda msg: console.print(msg, highlight=False))
    for note in report.notes:
        console.print(f"[yellow]warning:[/] {note}", highlight=False)
    title = f"validated on {report.validation_source}" if not no_validate else "NOT validated (--no-validate)"
    console.print(export_table(report.manifest, title=title))
    console.print(f"wrote {report.out_dir}/manifest.json in {report.seconds:.1f}s", highlight=False)


def list_models() -> None:
    """List the built-in architectures with their preprocessing contract."""
    from rich.table import Table

    from ..models import list_models as registry
    from ..report.console import console

    table = Table(title="edgefkd architectures (--arch)")
    for col in ("name", "input HxW", "mean", "std", "channels", "embedding", "description"):
        table.add_column(col)
    for cfg in registry():
        c = cfg.contract
        table.add_row(
            cfg.name, f"{c.input_size[0]}x{c.input_size[1]}" + ("+" if cfg.flexible_input else ""),
            ",".join(f"{v:g}" for v in c.mean), ",".join(f"{v:g}" for v in c.std),
            c.channel_order.upper(), str(cfg.embedding_size), cfg.description,
        )
    console.print(table)
    console.print("'+': other input sizes accepted via --input-size. Mean/std in 0-255 pixel units.", highlight=False)
