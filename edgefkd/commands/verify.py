"""`edgefkd verify-parity`. Heavy imports go inside the command function."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer


def register(app: typer.Typer) -> None:
    """Add verify-parity to the app."""

    @app.command("verify-parity")
    def verify_parity(
        targets: List[Path] = typer.Argument(..., help="An export directory, or artifact files (.onnx, .xml, .engine)."),
        pairs: Path = typer.Option(..., "--pairs", help="Pairs: insightface .bin, LFW pairs.txt, or CSV file_a,file_b,is_same."),
        images_root: Optional[Path] = typer.Option(None, "--images-root", help="Folder the pair image paths are relative to (default: the pairs file's folder)."),
        reference: Optional[Path] = typer.Option(None, "--reference", help="PyTorch checkpoint to compare against (default: the manifest's)."),
        arch: Optional[str] = typer.Option(None, "--arch", help="Architecture of --reference (see list-models)."),
        input_size: Optional[str] = typer.Option(None, "--input-size", help="Reference input HxW, e.g. 112x112."),
        mean: Optional[str] = typer.Option(None, "--mean", help="Reference mean (0-255 units, 1 or 3 values)."),
        std: Optional[str] = typer.Option(None, "--std", help="Reference std (0-255 units, 1 or 3 values)."),
        channel_order: Optional[str] = typer.Option(None, "--channel-order", help="Reference channel order: rgb or bgr."),
        teacher: Optional[str] = typer.Option(None, "--teacher", help="Teacher: checkpoint, export directory, or ONNX/OpenVINO file with edgefkd metadata."),
        teacher_arch: Optional[str] = typer.Option(None, "--teacher-arch", help="Architecture of a teacher checkpoint."),
        teacher_input_size: Optional[str] = typer.Option(None, "--teacher-input-size", help="Teacher input HxW."),
        teacher_mean: Optional[str] = typer.Option(None, "--teacher-mean", help="Teacher mean (0-255 units)."),
        teacher_std: Optional[str] = typer.Option(None, "--teacher-std", help="Teacher std (0-255 units)."),
        teacher_channel_order: Optional[str] = typer.Option(None, "--teacher-channel-order", help="Teacher channel order."),
        flip: bool = typer.Option(False, "--flip", help="Flip test: embed each face plus its mirror image."),
        batch_size: int = typer.Option(32, "--batch-size", min=1, help="Images per inference batch."),
        bootstrap: int = typer.Option(0, "--bootstrap", min=0, max=100_000, help="Paired bootstrap resamples for the accuracy difference (0: off; at most 100000, beyond which the 95% interval no longer moves)."),
        min_cosine: float = typer.Option(0.99, "--min-cosine", help="Gate: 1st-percentile cosine to the reference."),
        max_acc_drop: float = typer.Option(0.5, "--max-acc-drop", help="Gate: accuracy drop vs the reference, percentage points."),
        max_teacher_drop: float = typer.Option(1.0, "--max-teacher-drop", help="Gate: teacher-space accuracy drop vs the teacher's own, pp."),
        report: Optional[Path] = typer.Option(None, "--report", help="Report folder (default: <export dir>/parity)."),
        ov_device: str = typer.Option("CPU", "--ov-device", help="OpenVINO device."),
        no_verify_hash: bool = typer.Option(False, "--no-verify-hash", help="Use manifest artifacts even if their sha256 differs (the report says so)."),
        trust_manifest: bool = typer.Option(False, "--trust-manifest", help="Let a manifest's file.py:factory / module:function arch import and run its code."),
    ) -> None:
        """Prove exported artifacts keep the reference's accuracy and the teacher's embedding space.

        Exit 0 when every artifact passes, 1 when any fails a gate, 2 for bad input.
        """
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
        from rich.table import Table

        from ..verify.datasets import load_pairs
        from ..verify.parity import Gates, ParityOptions, ReferenceOptions, resolve_targets, run_parity, teacher_source
        from ..verify.report import check_report_dir, summary_rows, write_report

        from ..bench.host import check_batch_fits

        check_batch_fits(batch_size)
        pair_set = load_pairs(pairs, images_root)
        resolved = resolve_targets(
            targets, ReferenceOptions(str(reference) if reference else None, arch, input_size, mean, std, channel_order), ov_device,
            verify_hash=not no_verify_hash, trust_manifest=trust_manifest,
        )
        report_dir = report or resolved.default_report_dir
        check_report_dir(report_dir)
        teacher_model = (
            teacher_source(teacher, teacher_arch, teacher_input_size, teacher_mean, teacher_std, teacher_channel_order, ov_device,
                           trust_manifest=trust_manifest)
            if teacher
            else None
        )
        options = ParityOptions(batch_size, flip, bootstrap=bootstrap, gates=Gates(min_cosine, max_acc_drop, max_teacher_drop))
        console = Console(stderr=True)
        with Progress(
            TextColumn("embedding"), BarColumn(), MofNCompleteColumn(), TextColumn("images"), TimeElapsedColumn(),
            console=console, transient=True,
        ) as progress:
            task = progress.add_task("images", total=len(pair_set.images))
            result = run_parity(pair_set, resolved, teacher_model, options, lambda n: progress.advance(task, n))
        write_report(result, report_dir)

        header, rows = summary_rows(result.report)
        table = Table(title=f"verify-parity on {pair_set.num_pairs} pairs ({pair_set.kind})")
        for column in header:
            table.add_column(column, overflow="fold")
        for row in rows:
            style = "red" if row[-1].startswith("FAIL") else ("yellow" if row[-1].startswith("SKIP") else None)
            table.add_row(*row, style=style)
        out = Console(width=None if sys.stdout.isatty() else 200)
        out.print(table)
        if no_verify_hash:
            out.print("warning: artifact sha256 hashes were not checked (--no-verify-hash)")
        out.print(f"{'PASS' if result.passed else 'FAIL'}: report in {report_dir}")
        if not result.passed:
            raise typer.Exit(1)
