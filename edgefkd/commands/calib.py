"""`edgefkd calib synth|inspect`: make and look at INT8 calibration faces.

Heavy imports (numpy work, torch, Pillow) happen inside edgefkd.calib's functions.
"""

from __future__ import annotations

from pathlib import Path

import typer

calib_app = typer.Typer(
    name="calib",
    help="Calibration faces for INT8: generate the synthetic set, inspect a source.",
    no_args_is_help=True,
)


@calib_app.command("synth")
def synth(
    out: Path = typer.Option(..., "--out", help="Output folder (refused if non-empty, unless --force)."),
    n: int = typer.Option(512, "--n", help="Number of faces."),
    seed: int = typer.Option(0, "--seed", help="Generator seed; the same seed gives the same faces."),
    quality: int = typer.Option(90, "--quality", help="JPEG quality."),
    force: bool = typer.Option(False, "--force", help="Replace a non-empty output folder."),
) -> None:
    """Write N synthetic 112x112 aligned faces (DCGAN, gan-face-generate weights) with a manifest."""
    from ..calib import write_synthetic_set

    manifest = write_synthetic_set(out, n=n, seed=seed, force=force, jpeg_quality=quality)
    typer.echo(
        f"wrote {manifest['n']} synthetic faces (seed {manifest['seed']}, "
        f"{manifest['generator']['package']} {manifest['generator']['version']}) to {out}"
    )


@calib_app.command("inspect")
def inspect(
    source: str = typer.Argument("default", help="Folder, .bin, .npy, synthetic[:N[:SEED]] or default."),
    size: str = typer.Option("112x112", "--size", help="Face size HxW the faces are fitted to."),
    limit: int = typer.Option(None, "--limit", help="Use at most this many faces (seeded sample)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the sample (and of synthetic faces)."),
    sheet: Path = typer.Option(None, "--sheet", help="Also write a contact sheet PNG of the first 64 faces."),
) -> None:
    """Load a calibration source the way INT8 calibration will, and summarise it."""
    import warnings

    from ..calib import CalibrationWarning, load_calibration_faces, open_calibration_source
    from ..calib.preview import write_contact_sheet
    from ..calib.synthetic import MANIFEST_NAME, check_manifest
    from ..contract import parse_size

    face_size = parse_size(size)
    src = open_calibration_source(source, limit=limit, seed=seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CalibrationWarning)
        faces = load_calibration_faces(src, face_size, limit=limit, seed=seed)
    typer.echo(f"source: {src.description}")
    typer.echo(f"faces: {faces.shape[0]} x {faces.shape[1]}x{faces.shape[2]} RGB uint8")
    means, stds = faces.mean(axis=(0, 1, 2)), faces.std(axis=(0, 1, 2))
    typer.echo("channel mean R/G/B: " + " ".join(f"{v:.1f}" for v in means) + "   std: " + " ".join(f"{v:.1f}" for v in stds))
    for warning in caught:
        typer.echo(f"warning: {warning.message}", err=True)
    if src.folder is not None and (src.folder / MANIFEST_NAME).is_file():
        manifest = check_manifest(src.folder)
        typer.echo(f"manifest: ok, {len(manifest['files'])} files match their sha256 ({manifest.get('regenerate', '')})")
    if sheet is not None:
        write_contact_sheet(faces[:64], sheet)
        typer.echo(f"contact sheet: {sheet}")


def register(app: typer.Typer) -> None:
    """Add `edgefkd calib ...` to the app."""
    app.add_typer(calib_app, name="calib")
