"""`edgefkd verify-parity`. Heavy imports go inside the command function."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable, List, Optional

import typer


def register(app: typer.Typer) -> None:
    """Add verify-parity to the app."""

    @app.command("verify-parity")
    def verify_parity(
        targets: List[Path] = typer.Argument(..., help="An export directory, or artifact files (.onnx, .xml, .engine)."),
        pairs: List[Path] = typer.Option([], "--pairs", help="Pairs: insightface .bin, LFW pairs.txt, or CSV file_a,file_b,is_same. Repeat for several sets."),
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
        protocol: str = typer.Option("insightface", "--protocol", help="10-fold protocol: insightface (as its verification.py) or edgefkd (cosine, midpoint thresholds)."),
        bootstrap: int = typer.Option(1000, "--bootstrap", min=0, help="Paired bootstrap resamples behind every gate's 95% interval (0: point estimates only)."),
        seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap resamples."),
        inconclusive: Optional[str] = typer.Option(None, "--inconclusive", help="Exit an inconclusive run as pass (0) or fail (1) instead of 3."),
        min_cosine: float = typer.Option(0.99, "--min-cosine", help="Gate: 1st-percentile cosine to the reference."),
        max_acc_drop: float = typer.Option(0.5, "--max-acc-drop", help="Gate: accuracy drop vs the reference, percentage points."),
        max_teacher_drop: float = typer.Option(1.0, "--max-teacher-drop", help="Gate: teacher-space accuracy drop vs the teacher's own, pp."),
        report: Optional[Path] = typer.Option(None, "--report", help="Report folder (default: <export dir>/parity)."),
        ov_device: str = typer.Option("CPU", "--ov-device", help="OpenVINO device."),
        no_verify_hash: bool = typer.Option(False, "--no-verify-hash", help="Use manifest artifacts even if their sha256 differs (the report says so)."),
        trust_manifest: bool = typer.Option(False, "--trust-manifest", help="Let a manifest's file.py:factory / module:function arch import and run its code."),
        ijb: Optional[Path] = typer.Option(None, "--ijb", help="IJB-B/C folder in the official layout (meta/, loose_crop/): 1:1 template verification."),
        ijb_set: str = typer.Option("IJBC", "--ijb-set", help="IJBB or IJBC."),
        gallery: Optional[Path] = typer.Option(None, "--gallery", help="1:N gallery CSV file,identity, enrolled by the teacher (else the reference)."),
        probes: Optional[Path] = typer.Option(None, "--probes", help="1:N probe CSV file,identity, embedded by each artifact."),
        engine: str = typer.Option("local", "--engine", help="Embedding engine for --ijb/--gallery: local (process pool) or ray."),
        ray_address: Optional[str] = typer.Option(None, "--ray-address", help="Ray cluster address (default: auto, else a local cluster)."),
        workers: Optional[int] = typer.Option(None, "--workers", min=1, help="local: decoding processes; ray: actors per model (default: all CPUs)."),
        embedding_dtype: str = typer.Option("float32", "--embedding-dtype", help="Keep embeddings as float32 or float16 (half the memory)."),
        detector_weighting: bool = typer.Option(False, "--detector-weighting", help="IJB: weight each face by its detector score in template pooling."),
        max_tar_drop: float = typer.Option(1.0, "--max-tar-drop", help="Gate: IJB TAR drop vs the reference at the gate FAR, pp."),
        max_rank1_drop: float = typer.Option(1.0, "--max-rank1-drop", help="Gate: rank-1 drop vs the gallery model's own probes, pp."),
    ) -> None:
        """Prove exported artifacts keep the reference's accuracy and the teacher's embedding space.

        Exit 0 when every artifact passes, 1 when any fails a gate, 3 when none fails but the
        pairs cannot decide some gate (--inconclusive maps it), 2 for bad input.
        """
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
        from rich.table import Table

        from ..errors import InputError
        from ..verify.datasets import load_pairs
        from ..verify.parity import Gates, ParityOptions, ReferenceOptions, resolve_targets, run_parity, teacher_source
        from ..verify.protocol import check_protocol
        from ..verify.report import check_report_dir, gate_notes, matrix_rows, summary_rows, write_report
        from ..verify.statistics import check_bootstrap

        if ijb or gallery or probes:
            if pairs:
                raise InputError("--pairs and --ijb/--gallery are separate runs with separate reports: give one of them")
            from .verify_templates import TemplateRequest, run_template_checks

            request = TemplateRequest(ijb, ijb_set, gallery, probes, images_root, engine, ray_address, workers,
                                      embedding_dtype, detector_weighting, max_tar_drop, max_rank1_drop)
            resolved = resolve_targets(
                targets, ReferenceOptions(str(reference) if reference else None, arch, input_size, mean, std, channel_order), ov_device,
                verify_hash=not no_verify_hash, trust_manifest=trust_manifest,
            )
            teacher_model = (teacher_source(teacher, teacher_arch, teacher_input_size, teacher_mean, teacher_std,
                                            teacher_channel_order, ov_device, trust_manifest=trust_manifest) if teacher else None)
            code = run_template_checks(request, resolved, teacher_model, report, flip, batch_size, bootstrap, min_cosine, max_teacher_drop)
            raise typer.Exit(code)
        if not pairs:
            raise InputError("give --pairs FILE, --ijb DIR or --gallery FILE --probes FILE")
        check_protocol(protocol)
        if inconclusive not in (None, "pass", "fail"):
            raise InputError(f"--inconclusive must be pass or fail, got {inconclusive!r}")
        from ..bench.host import check_batch_fits

        check_batch_fits(batch_size)
        pair_sets = [load_pairs(p, images_root) for p in pairs]
        resolved = resolve_targets(
            targets, ReferenceOptions(str(reference) if reference else None, arch, input_size, mean, std, channel_order), ov_device,
            verify_hash=not no_verify_hash, trust_manifest=trust_manifest,
        )
        report_dir = report or resolved.default_report_dir
        check_report_dir(report_dir)
        # Reference and artifacts, plus with a teacher: itself and two cross-model directions per model.
        models = 1 + len(resolved.artifacts)
        check_bootstrap(bootstrap, [p.num_pairs for p in pair_sets], models + (1 + 2 * models if teacher else 0), 10, protocol)
        teacher_model = (
            teacher_source(teacher, teacher_arch, teacher_input_size, teacher_mean, teacher_std, teacher_channel_order, ov_device,
                           trust_manifest=trust_manifest)
            if teacher
            else None
        )
        options = ParityOptions(batch_size, flip, bootstrap=bootstrap, gates=Gates(min_cosine, max_acc_drop, max_teacher_drop),
                                protocol=protocol, seed=seed, inconclusive_as=inconclusive)
        console = Console(stderr=True)
        with Progress(
            TextColumn("embedding"), BarColumn(), MofNCompleteColumn(), TextColumn("images"), TimeElapsedColumn(),
            console=console, transient=True,
        ) as progress:
            task = progress.add_task("images", total=sum(len(p.images) for p in pair_sets))
            result = run_parity(pair_sets, resolved, teacher_model, options, lambda n: progress.advance(task, n))
        write_report(result, report_dir)
        _print_tables(result.report, summary_rows, matrix_rows, gate_notes, Table, Console, console)
        if no_verify_hash:
            console.print("warning: artifact sha256 hashes were not checked (--no-verify-hash)")
        code = result.exit_code
        verdict = result.report["verdict"].upper()
        mapped = f" (exit {code}: --inconclusive {inconclusive})" if verdict == "INCONCLUSIVE" and inconclusive else ""
        Console(width=None if sys.stdout.isatty() else 200).print(f"{verdict}{mapped}: report in {report_dir}")
        if code:
            raise typer.Exit(code)


def _print_tables(report: dict, summary_rows: Callable, matrix_rows: Callable, gate_notes: Callable, table_cls: Any, console_cls: Any, err: Any) -> None:
    """One table per pair set, then the artifact x set summary; warnings on stderr."""
    out = console_cls(width=None if sys.stdout.isatty() else 200)
    options = report["options"]
    for block in report["sets"]:
        for warning in block["warnings"]:
            err.print(f"warning: {warning}")
        pairs = block["pairs"]
        header, rows = summary_rows(block)
        table = table_cls(title=f"verify-parity on {Path(pairs['source']).name}: {pairs['pairs']} pairs ({pairs['format']}), "
                                f"{options['protocol']} protocol")
        for column in header:
            table.add_column(column, overflow="fold")
        for row in rows:
            style = {"FAIL": "red", "SKIP": "yellow", "INCO": "yellow"}.get(row[-1][:4])
            table.add_row(*row, style=style)
        out.print(table)
        for note in gate_notes(block):
            out.print(f"  {note}")
    header, rows = matrix_rows(report)
    table = table_cls(title="accuracy per set (drop vs reference [95% interval]) and verdict")
    for column in header:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row)
    out.print(table)
    out.print(options["estimate"])
