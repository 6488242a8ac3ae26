"""`edgefkd build-engine`: TensorRT engines on the target, or the bundle where TensorRT is absent."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command("build-engine")
    def build_engine(
        export_dir: Path = typer.Argument(..., exists=True, file_okay=False, help="Export directory (with manifest.json and the ONNX)."),
        precision: str = typer.Option("fp16", "--precision", "-p", help="Comma-separated: fp32, fp16, int8."),
        min_batch: Optional[int] = typer.Option(None, "--min-batch", help="Smallest batch of the optimisation profile (default 1; with --dla-core: the opt batch)."),
        opt_batch: Optional[int] = typer.Option(None, "--opt-batch", help="Batch TensorRT tunes for (default 8; with --dla-core: 1)."),
        max_batch: Optional[int] = typer.Option(None, "--max-batch", help="Largest batch of the optimisation profile (default 32; with --dla-core: the opt batch)."),
        workspace: int = typer.Option(1024, "--workspace", help="Builder workspace limit in MiB."),
        timing_cache: Optional[Path] = typer.Option(None, "--timing-cache", help="Timing cache file reused across builds (default: EXPORT_DIR/tensorrt/timing.cache)."),
        dla_core: Optional[int] = typer.Option(None, "--dla-core", help="Jetson DLA core to build for (static batch, GPU fallback on)."),
        implicit_int8: bool = typer.Option(False, "--implicit-int8", help="TensorRT 8.6 only: INT8 from the fp32 ONNX with an entropy calibration cache computed from --calib faces (kept if current)."),
        calib: Optional[str] = typer.Option(None, "--calib", help="Calibration faces for --implicit-int8 (folder, .bin, .npy or 'synthetic')."),
        no_verify_hash: bool = typer.Option(False, "--no-verify-hash", help="Build from manifest ONNX files even if their sha256 differs."),
        device: int = typer.Option(0, "--device", help="CUDA device index (builds and runs there)."),
    ) -> None:
        """Build TensorRT engines on this machine and add them to the manifest.

        Without TensorRT, writes/refreshes the bundle under EXPORT_DIR/tensorrt/
        (trtexec command files, sidecars, compatibility report) and prints the line to run
        on the target.
        """
        from ..exporters.tensorrt import TensorRTOptions, build_engine_command, export_tensorrt
        from ..fileio import check_plain_path
        from ..manifest import Manifest

        check_plain_path(export_dir, "export directory")
        precisions = [p.strip().lower() for p in precision.split(",") if p.strip()]
        # DLA runs one static batch: unless given, min and max follow opt (default 1 there).
        opt_batch = opt_batch if opt_batch is not None else (1 if dla_core is not None else 8)
        static = dla_core is not None
        min_batch = min_batch if min_batch is not None else (opt_batch if static else 1)
        max_batch = max_batch if max_batch is not None else (opt_batch if static else 32)
        options = TensorRTOptions(
            min_batch=min_batch, opt_batch=opt_batch, max_batch=max_batch, workspace_mib=workspace,
            timing_cache=timing_cache, dla_core=dla_core, implicit_int8=implicit_int8, calib_source=calib, device=device,
            verify_hash=not no_verify_hash,
        )
        manifest = Manifest.read(export_dir)
        entries = export_tensorrt(export_dir, manifest, precisions, options)
        for entry in entries:
            manifest.upsert(entry)
        manifest.write(export_dir)
        deferred = [e for e in entries if e.extra.get("status") != "built"]
        for entry in entries:
            state = entry.extra.get("status")
            typer.echo(f"{entry.precision}: {entry.path} ({state})")
        if no_verify_hash:
            typer.echo("warning: source ONNX sha256 hashes were not checked (--no-verify-hash)")
        if deferred:
            typer.echo(f"TensorRT bundle: {export_dir / 'tensorrt'} ({deferred[0].extra.get('reason', '')})")
            typer.echo("run on the target: " + build_engine_command(export_dir, [e.precision for e in deferred], options))
