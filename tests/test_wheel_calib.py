"""The default calibration set works from an installed wheel, not only from a checkout.

Builds the wheel (`pip wheel --no-deps`, no network), installs it into a fresh venv whose
only other packages come from the running interpreter's site-packages through a .pth
file, and loads the default set from a folder that has no calib_data/ of its own.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _checkout_copy(dest: Path) -> Path:
    """The tracked (and new, unignored) files only: build outputs of the checkout stay out."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True, text=True, check=True)
    archive = dest.parent / "src.tar"
    with tarfile.open(archive, "w") as tar:
        for name in files.stdout.splitlines():
            if (REPO / name).is_file():
                tar.add(REPO / name, arcname=name)
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
    return dest


def test_default_calibration_set_from_an_installed_wheel(tmp_path: Path) -> None:
    source = _checkout_copy(tmp_path / "src")
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), str(source)],
                   check=True, capture_output=True)  # fmt: skip
    wheel = next(wheels.glob("edgefkd-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               capture_output=True, text=True, check=True).stdout.strip())  # fmt: skip
    # Reuse this interpreter's packages (torch, onnx...) without installing anything.
    (site / "reuse_test_env.pth").write_text(sysconfig.get_path("purelib") + "\n")
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True, capture_output=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    probe = (
        "import edgefkd\n"
        "from edgefkd.calib import load_calibration_faces, shipped_calibration_dir\n"
        "print(edgefkd.__file__)\n"
        "print(shipped_calibration_dir())\n"
        "print(load_calibration_faces('default', (112, 112), limit=8).shape)\n"
    )
    done = subprocess.run([str(python), "-c", probe], cwd=elsewhere, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-2000:]
    module_file, calib_dir, shape = done.stdout.strip().splitlines()
    assert Path(module_file).is_relative_to(site), "the wheel's edgefkd was not the one imported"
    assert Path(calib_dir) == site / "edgefkd" / "calib_data"
    assert shape == "(8, 112, 112, 3)"
