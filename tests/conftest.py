"""Shared test fixtures. Real data lives in ../shared (override with EDGEFKD_FIXTURES)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("EDGEFKD_FIXTURES", REPO.parent / "shared")).resolve()
MODEL_DIR = FIXTURES / "models" / "mobilefacenet-foamliu"
FACES_DIR = FIXTURES / "faces"


def _need(path: Path) -> Path:
    """The fixture's path; a skip where it is absent, except in CI, where fixtures always exist.

    CI sets CI=true: there a missing fixture is a broken fixture path, which must fail the
    run rather than turn the tests that need it into silent skips.
    """
    if not path.exists():
        message = f"real fixture {path} is absent (set EDGEFKD_FIXTURES to the shared/ folder)"
        if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
            pytest.fail(f"{message}; CI is set, so this fails instead of skipping", pytrace=False)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return _need(FIXTURES)


@pytest.fixture(scope="session")
def mobilefacenet_pt() -> Path:
    return _need(MODEL_DIR / "mobilefacenet.pt")


@pytest.fixture(scope="session")
def mobilefacenet_upstream_onnx() -> Path:
    return _need(MODEL_DIR / "MobileFaceNet.onnx")


@pytest.fixture(scope="session")
def faces_dir() -> Path:
    """Folder of the 75 real aligned 112x112 faces (recursively)."""
    return _need(FACES_DIR / "aligned112")


@pytest.fixture(scope="session")
def pairs_csv() -> Path:
    return _need(FACES_DIR / "pairs_balanced.csv")


@pytest.fixture(scope="session")
def pairs_bin() -> Path:
    return _need(FACES_DIR / "real_pairs_balanced.bin")


@pytest.fixture(scope="session")
def mobilefacenet_export(tmp_path_factory: pytest.TempPathFactory, mobilefacenet_pt: Path, faces_dir: Path) -> Path:
    """One export (ONNX + OpenVINO, fp32 + fp16) of the real MobileFaceNet, shared by all tests.

    Tests must not modify it; copy it first (shutil.copytree) if they need to.
    """
    from edgefkd.exporters.pipeline import ExportOptions, run_export

    out = tmp_path_factory.mktemp("export") / "mobilefacenet"
    run_export(ExportOptions(checkpoint=mobilefacenet_pt, arch="mobilefacenet-foamliu", out=out, val_images=faces_dir))
    return out


@pytest.fixture(scope="session")
def student_dir() -> Path:
    """The real pruned MobileFaceNet student distilled into the shared MobileFaceNet's space."""
    return _need(FIXTURES / "models" / "mfn-pruned-student")


@pytest.fixture(scope="session")
def user_arch(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A user's architecture file and a trained-looking checkpoint for each factory (DDP-prefixed)."""
    root = tmp_path_factory.mktemp("user_arch")
    arch = root / "my_student.py"
    from format_support import USER_ARCH

    arch.write_text(USER_ARCH)
    import importlib.util

    spec = importlib.util.spec_from_file_location("my_student_for_test", arch)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    import torch

    torch.manual_seed(0)
    for factory in ("tiny", "spatial", "needs_svd"):
        net = getattr(module, factory)()
        torch.save({"state_dict": {f"module.{k}": v for k, v in net.state_dict().items()}}, root / f"{factory}.pth")
    return arch, root / "tiny.pth"
