"""Hostile inputs, the way a user passing files around would meet them.

Each case builds a real hostile input (a .pt2 or checkpoint whose payload creates a marker
file, a manifest naming code or a path out of its folder, a changed artifact, a newline in
a path, a read-only or full file system...) and runs the real CLI in a subprocess. Every
case must end with its exit code and exactly one `error:` line, no traceback, no marker,
and the case's folder exactly as it was: inputs untouched, nothing half-written, no
staging folder or lock left.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

REPO = Path(__file__).resolve().parents[1]
ARCH = "mobilefacenet-foamliu"
MARKER = "MARKER"
#: The cheapest real export: one fp32 ONNX, TorchScript exporter, no onnxsim.
CHEAP_EXPORT = ["--formats", "onnx", "--precisions", "fp32", "--exporter", "legacy", "--no-simplify"]


def run_cli(args: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    """The real command line, with this checkout's code, run from `cwd` (also importable)."""
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{cwd}"}
    return subprocess.run(
        [sys.executable, "-m", "edgefkd.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def snapshot(folder: Path) -> dict[str, str]:
    """Every file, folder and link under `folder` (hidden ones too) with its content hash."""
    state = {}
    for path in sorted(folder.rglob("*")):
        rel = str(path.relative_to(folder))
        if path.is_symlink():
            state[rel] = "link:" + os.readlink(path)
        elif path.is_file():
            state[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            state[rel] = "dir"
    return state


# -- hostile files --------------------------------------------------------------------------


class Payload:
    """Pickled, it calls open(marker, "w") when unpickled: proof that unpickling ran code."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple:
        return (open, (self.marker, "w"))


def tiny_program(path: Path) -> None:
    """A real torch.export program with a dynamic batch (so it holds symbolic shapes)."""
    import torch

    class Tiny(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(3 * 8 * 8, 16)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x.flatten(1))

    program = torch.export.export(Tiny().eval(), (torch.randn(2, 3, 8, 8),), dynamic_shapes=({0: torch.export.Dim("b")},))
    torch.export.save(program, str(path))


def rewrite_archive(src: Path, dst: Path, edit: Callable[[dict[str, bytes], str], None]) -> Path:
    with zipfile.ZipFile(src) as archive:
        files = {n: archive.read(n) for n in archive.namelist()}
    edit(files, next(iter(files)).split("/", 1)[0])
    with zipfile.ZipFile(dst, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return dst


def pt2_pickled_weight(files: dict[str, bytes], root: str, marker: Path) -> None:
    import torch

    name = f"{root}/data/weights/model_weights_config.json"
    config = json.loads(files[name])
    key = next(iter(config["config"]))
    config["config"][key]["use_pickle"] = True
    files[name] = json.dumps(config).encode()
    buffer = io.BytesIO()
    torch.save(Payload(marker), buffer)
    files[f"{root}/data/weights/{config['config'][key]['path_name']}"] = buffer.getvalue()


def pt2_opaque_constant(files: dict[str, bytes], root: str, marker: Path) -> None:
    name = f"{root}/data/constants/model_constants_config.json"
    config = json.loads(files[name])
    config.setdefault("config", {})["evil"] = {"path_name": "opaque_obj_0", "is_param": False, "use_pickle": True, "tensor_meta": None}
    files[name] = json.dumps(config).encode()
    files[f"{root}/data/constants/opaque_obj_0"] = pickle.dumps(Payload(marker))


def pt2_graph_target(files: dict[str, bytes], root: str, marker: Path) -> None:
    name = f"{root}/models/model.json"
    text = files[name].decode()
    files[name] = text.replace('"torch.ops.aten.linear.default"', '"torch.serialization.os.system"', 1).encode()


def pt2_shape_expression(files: dict[str, bytes], root: str, marker: Path) -> None:
    name = f"{root}/models/model.json"
    program = json.loads(files[name])
    evil = f"__import__('builtins').open('{marker}', 'w')"

    def poison(node: object) -> bool:
        if isinstance(node, dict):
            if isinstance(node.get("expr_str"), str):
                node["expr_str"] = evil
                return True
            return any(poison(v) for v in node.values())
        return isinstance(node, list) and any(poison(v) for v in node)

    assert poison(program), "the program has no symbolic shape to poison"
    files[name] = json.dumps(program).encode()


PT2_ATTACKS = {
    "pickled-weight": pt2_pickled_weight,
    "opaque-constant": pt2_opaque_constant,
    "graph-target": pt2_graph_target,
    "shape-expression": pt2_shape_expression,
}


@dataclass
class World:
    """The real inputs every case starts from (never modified: cases copy what they change)."""

    checkpoint: Path
    export_dir: Path
    faces: Path
    pairs: Path
    tiny_pt2: Path


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory, mobilefacenet_pt: Path, faces_dir: Path, pairs_csv: Path) -> World:
    root = tmp_path_factory.mktemp("hostile-world")
    out = root / "export"
    done = run_cli(["export", str(mobilefacenet_pt), "--arch", ARCH, "--out", str(out), "--val-images", str(faces_dir),
                    *CHEAP_EXPORT], root)  # fmt: skip
    assert done.returncode == 0, done.stderr
    tiny_program(root / "tiny.pt2")
    return World(mobilefacenet_pt, out, faces_dir, pairs_csv, root / "tiny.pt2")


def copy_export(world: World, case: Path, **model: str) -> Path:
    """A copy of the real export in the case folder, with manifest "model" fields replaced."""
    target = case / "export"
    shutil.copytree(world.export_dir, target)
    if model:
        edit_manifest(target, lambda m: m["model"].update(model))
    return target


def edit_manifest(export: Path, change: Callable[[dict], None]) -> None:
    path = export / "manifest.json"
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest, indent=2))


def set_artifact_path(export: Path, path: str, sha256: str | None = None) -> None:
    def change(manifest: dict) -> None:
        manifest["artifacts"][0]["path"] = path
        if sha256 is not None:
            manifest["artifacts"][0]["sha256"] = sha256

    edit_manifest(export, change)


def evil_pt2(world: World, case: Path, attack: str = "pickled-weight") -> Path:
    return rewrite_archive(world.tiny_pt2, case / "evil.pt2", lambda f, r: PT2_ATTACKS[attack](f, r, case / MARKER))


def evil_module(case: Path) -> None:
    """Python that creates the marker when imported: what a hostile manifest arch would run."""
    (case / "evilarch.py").write_text(
        f"open({str(case / MARKER)!r}, 'w').close()\n"
        "def factory():\n    raise SystemExit('the factory ran')\n"
    )


def foreign_onnx(world: World, case: Path) -> tuple[Path, str]:
    """A real ONNX outside the export folder, and its sha256 (so only containment can stop it)."""
    folder = case / "foreign"
    folder.mkdir()
    onnx = folder / "model.onnx"
    shutil.copy(world.export_dir / "onnx" / "model_fp32.onnx", onnx)
    return onnx, hashlib.sha256(onnx.read_bytes()).hexdigest()


# -- the table ----------------------------------------------------------------------------------


@dataclass
class Hostile:
    name: str
    build: Callable[[World, Path], list[str]]  # -> CLI arguments, after writing what the case needs
    says: str  # part of the one error line
    code: int = 2


def _pairs(world: World) -> list[str]:
    return ["--pairs", str(world.pairs)]


def _pt2_export(attack: str) -> Callable[[World, Path], list[str]]:
    return lambda w, c: ["export", str(evil_pt2(w, c, attack)), "--out", "out", *CHEAP_EXPORT]


def _manifest_pt2(command: str) -> Callable[[World, Path], list[str]]:
    def build(w: World, c: Path) -> list[str]:
        export = copy_export(w, c, checkpoint=str(evil_pt2(w, c)), arch="torch.export")
        return [command, str(export)] + (_pairs(w) if command == "verify-parity" else ["--iters", "1"])

    return build


def _code_arch(command: str, arch: str) -> Callable[[World, Path], list[str]]:
    def build(w: World, c: Path) -> list[str]:
        evil_module(c)
        export = copy_export(w, c, arch=arch.format(case=c))
        return [command, str(export)] + (_pairs(w) if command == "verify-parity" else ["--iters", "1"])

    return build


def _code_arch_teacher(w: World, c: Path) -> list[str]:
    """A teacher given as someone else's export folder whose manifest names code."""
    evil_module(c)
    teacher = copy_export(w, c, arch="evilarch:factory")
    return ["verify-parity", str(w.export_dir), *_pairs(w), "--teacher", str(teacher), "--report", str(c / "rep")]


def _outside(command: str, how: str) -> Callable[[World, Path], list[str]]:
    def build(w: World, c: Path) -> list[str]:
        onnx, digest = foreign_onnx(w, c)
        export = copy_export(w, c)
        if how == "dotdot":
            set_artifact_path(export, "../foreign/model.onnx", digest)
        elif how == "absolute":
            set_artifact_path(export, str(onnx), digest)
        else:
            (export / "onnx" / "link.onnx").symlink_to(onnx)
            set_artifact_path(export, "onnx/link.onnx", digest)
        return [command, str(export)] + {"verify-parity": _pairs(w), "benchmark-latency": ["--iters", "1"]}.get(command, [])

    return build


def _changed_artifact(command: str) -> Callable[[World, Path], list[str]]:
    def build(w: World, c: Path) -> list[str]:
        export = copy_export(w, c)
        with open(export / "onnx" / "model_fp32.onnx", "r+b") as fh:  # one byte of the weights
            fh.seek(-100, os.SEEK_END)
            byte = fh.read(1)
            fh.seek(-100, os.SEEK_END)
            fh.write(bytes([byte[0] ^ 0xFF]))
        return [command, str(export)] + {"verify-parity": _pairs(w), "benchmark-latency": ["--iters", "1"]}.get(command, [])

    return build


def _newline_artifact(w: World, c: Path) -> list[str]:
    export = copy_export(w, c)
    name = "onnx/model\ntouch MARKER; #.onnx"
    shutil.copy(export / "onnx" / "model_fp32.onnx", export / name)
    set_artifact_path(export, name)
    return ["build-engine", str(export)]


def _evil_checkpoint(w: World, c: Path) -> list[str]:
    import torch

    torch.save({"state_dict": Payload(c / MARKER)}, c / "evil.pt")
    return ["export", str(c / "evil.pt"), "--arch", ARCH, "--out", "out", *CHEAP_EXPORT]


def _export_args(w: World, *extra: str) -> list[str]:
    return ["export", str(w.checkpoint), "--arch", ARCH, "--val-images", str(w.faces), *CHEAP_EXPORT, *extra]


def _checkpoint_folder(w: World, c: Path) -> list[str]:
    (c / "ck").mkdir()
    shutil.copy(w.checkpoint, c / "ck" / "mobilefacenet.pt")
    return ["export", str(c / "ck" / "mobilefacenet.pt"), "--arch", ARCH, "--out", str(c / "ck"), "--force", *CHEAP_EXPORT]


def _file_parent(command: str) -> Callable[[World, Path], list[str]]:
    def build(w: World, c: Path) -> list[str]:
        (c / "afile").write_text("not a folder\n")
        if command == "export":
            return _export_args(w, "--out", str(c / "afile" / "out"))
        export = copy_export(w, c)
        return [command, str(export), "--report", str(c / "afile" / "rep")] + (
            _pairs(w) if command == "verify-parity" else ["--iters", "1"]
        )

    return build


CASES = [
    *(Hostile(f"pt2-{a}-export", _pt2_export(a), "refused") for a in PT2_ATTACKS),
    Hostile("pt2-teacher", lambda w, c: ["verify-parity", str(copy_export(w, c)), *_pairs(w), "--teacher", str(evil_pt2(w, c))], "refused"),
    Hostile("pt2-manifest-checkpoint-verify", _manifest_pt2("verify-parity"), "refused"),
    Hostile("pt2-manifest-checkpoint-bench", _manifest_pt2("benchmark-latency"), "refused"),
    Hostile("pickle-checkpoint", _evil_checkpoint, "code execution"),
    Hostile("manifest-arch-file-verify", _code_arch("verify-parity", "{case}/evilarch.py:factory"), "would import and run"),
    Hostile("manifest-arch-module-bench", _code_arch("benchmark-latency", "evilarch:factory"), "would import and run"),
    Hostile("manifest-arch-module-teacher", _code_arch_teacher, "would import and run"),
    Hostile("dotdot-path-verify", _outside("verify-parity", "dotdot"), "not a plain path"),
    Hostile("absolute-path-bench", _outside("benchmark-latency", "absolute"), "not a plain path"),
    Hostile("symlink-out-build-engine", _outside("build-engine", "symlink"), "leads out"),
    Hostile("changed-artifact-verify", _changed_artifact("verify-parity"), "does not match the sha256"),
    Hostile("changed-artifact-bench", _changed_artifact("benchmark-latency"), "does not match the sha256"),
    Hostile("changed-artifact-build-engine", _changed_artifact("build-engine"), "does not match the sha256"),
    Hostile("newline-artifact-build-engine", _newline_artifact, "control character"),
    Hostile("newline-out", lambda w, c: _export_args(w, "--out", "out\ntouch MARKER"), "control character"),
    Hostile("newline-name", lambda w, c: _export_args(w, "--name", "a\nb"), "control character"),
    Hostile("bad-keep-fp-regex", lambda w, c: _export_args(w, "--out", "out", "--keep-fp", "re:("), "regular expression"),
    Hostile("calib-count-zero", lambda w, c: _export_args(w, "--out", "out", "--calib-count", "0"), "--calib-count"),
    Hostile("calib-method-unknown", lambda w, c: _export_args(w, "--out", "out", "--calib-method", "best"), "--calib-method"),
    Hostile("opset-too-old", lambda w, c: _export_args(w, "--out", "out", "--opset", "5"), "--opset 5"),
    Hostile("opset-unknown", lambda w, c: _export_args(w, "--out", "out", "--opset", "99"), "--opset 99"),
    Hostile("bootstrap-huge", lambda w, c: ["verify-parity", str(copy_export(w, c)), *_pairs(w), "--bootstrap", "1000000000"], "--bootstrap"),
    Hostile("batch-huge", lambda w, c: ["benchmark-latency", str(copy_export(w, c)), "--batch-sizes", "100000"], "gib"),
    Hostile("unknown-option", lambda w, c: _export_args(w, "--out", "out", "--frobnicate"), "no such option"),
    Hostile("out-is-cwd", lambda w, c: _export_args(w, "--out", ".", "--force"), "current folder"),
    Hostile("out-holds-checkpoint", _checkpoint_folder, "overlaps the input"),
    Hostile("checkpoint-is-folder", lambda w, c: (c / "ckdir").mkdir() or ["export", str(c / "ckdir"), "--arch", ARCH], "is a folder"),
    Hostile("out-parent-is-file", _file_parent("export"), "is a file"),
    Hostile("verify-report-parent-is-file", _file_parent("verify-parity"), "is a file"),
    Hostile("bench-report-parent-is-file", _file_parent("benchmark-latency"), "is a file"),
]


def check_outcome(done: subprocess.CompletedProcess[str], code: int, says: str, case: Path, before: dict[str, str]) -> None:
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == code, done.stderr[-2000:]
    assert len(errors) == 1, done.stderr[-2000:]
    assert says.lower() in errors[0].lower(), errors[0]
    assert "Traceback" not in done.stderr
    assert not list(case.rglob(MARKER)), "the hostile payload ran"
    assert snapshot(case) == before, "the case folder changed: an input was touched or output left behind"


@pytest.mark.parametrize("hostile", CASES, ids=[c.name for c in CASES])
def test_hostile_input_is_refused_in_one_line(hostile: Hostile, world: World, tmp_path: Path) -> None:
    case = tmp_path / "case"
    case.mkdir()
    args = hostile.build(world, case)
    before = snapshot(case)
    world_before = snapshot(world.export_dir)
    done = run_cli(args, case)
    check_outcome(done, hostile.code, hostile.says, case, before)
    assert snapshot(world.export_dir) == world_before


def test_the_pt2_payloads_do_run_code_under_plain_torch_export_load(world: World, tmp_path: Path) -> None:
    """The table's .pt2 files are real attacks: torch's own loader runs their payload."""
    for attack in ("pickled-weight", "opaque-constant"):
        case = tmp_path / attack
        case.mkdir()
        evil = evil_pt2(world, case, attack)
        subprocess.run([sys.executable, "-c", f"import torch\ntry: torch.export.load({str(evil)!r})\nexcept Exception: pass"],
                       capture_output=True, timeout=300)  # fmt: skip
        assert (case / MARKER).exists(), f"{attack}: torch.export.load did not run the payload"


def test_a_plain_pt2_still_loads(world: World) -> None:
    from edgefkd.models.pt2_safety import load_exported_program

    program = load_exported_program(world.tiny_pt2)
    assert program.module() is not None


def test_trust_manifest_lets_the_manifest_arch_run(tmp_path: Path) -> None:
    from edgefkd.errors import InputError
    from edgefkd.models.loading import check_manifest_arch

    with pytest.raises(InputError, match="would import and run"):
        check_manifest_arch("evil.py:factory", tmp_path / "manifest.json", trusted=False)
    check_manifest_arch("evil.py:factory", tmp_path / "manifest.json", trusted=True)
    check_manifest_arch(ARCH, tmp_path / "manifest.json", trusted=False)  # a registered name runs nothing foreign


# -- file systems (need root for a small tmpfs) ------------------------------------------------


@pytest.fixture
def tmpfs(tmp_path: Path) -> Callable[[str], Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mounts: list[Path] = []

    def mount(options: str) -> Path:
        point = tmp_path / f"fs{len(mounts)}"
        point.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounts.append(point)
        return point

    yield mount
    for point in mounts:
        subprocess.run(["umount", str(point)], capture_output=True)


def test_read_only_file_system(world: World, tmp_path: Path, tmpfs: Callable[[str], Path]) -> None:
    read_only = tmpfs("size=4m,ro")
    case = tmp_path
    before = snapshot(case)
    check_outcome(run_cli(_export_args(world, "--out", str(read_only / "out")), case), 2, "read-only", case, before)
    check_outcome(run_cli(["verify-parity", str(world.export_dir), *_pairs(world), "--report", str(read_only / "rep")], case),
                  2, "read-only", case, before)  # fmt: skip


def test_full_file_system_during_export(world: World, tmp_path: Path, tmpfs: Callable[[str], Path]) -> None:
    full = tmpfs("size=4m")
    filler = full / "filler"
    with open(filler, "wb") as fh:  # leave about 1 MiB: the 4 MB fp32 ONNX cannot fit
        fh.write(b"\0" * (3 << 20))
    before = snapshot(tmp_path)
    done = run_cli(_export_args(world, "--out", str(full / "out"), "--no-validate"), tmp_path)
    check_outcome(done, 2, "no space left", tmp_path, before)


# -- races, signals, missing and unusable artifacts ------------------------------------------


def _staging_folders(parent: Path) -> list[Path]:
    return [p for p in parent.iterdir() if p.name.startswith(".") and (p.name.endswith(".staging") or ".lock" in p.name)]


def test_concurrent_exports_to_one_folder(world: World, tmp_path: Path) -> None:
    """Two exports to the same --out: one writes it, the other says so in one line and writes nothing."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    args = [sys.executable, "-m", "edgefkd.cli", *_export_args(world, "--out", "out", "--no-validate")]
    runs = [subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(r.wait(timeout=600), r.communicate()[1]) for r in runs]
    assert sorted(code for code, _ in results) == [0, 2], results
    loser = next(err for code, err in results if code == 2)
    assert len([line for line in loser.splitlines() if line.startswith("error:")]) == 1, loser
    from edgefkd.manifest import Manifest

    manifest = Manifest.read(tmp_path / "out")
    for entry in manifest.artifacts:  # the winner's export, whole and matching its hashes
        Manifest.artifact_file(tmp_path / "out", entry, verify_hash=True)
    assert _staging_folders(tmp_path) == []


def _start_export_and_wait_for_stage(world: World, folder: Path) -> subprocess.Popen[str]:
    import time

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    args = [sys.executable, "-m", "edgefkd.cli", *_export_args(world, "--out", "out")]
    run = subprocess.Popen(args, cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not [p for p in folder.iterdir() if p.name.endswith(".staging")]:
        assert run.poll() is None, "the export ended before it staged anything"
        assert time.monotonic() < deadline, "no staging folder appeared"
        time.sleep(0.2)
    return run


def test_sigterm_cleans_up_and_a_killed_run_is_cleaned_next_time(world: World, tmp_path: Path) -> None:
    import signal

    from edgefkd.fileio import clean_stale_stages

    terminated = _start_export_and_wait_for_stage(world, tmp_path)
    terminated.send_signal(signal.SIGTERM)
    assert terminated.wait(timeout=120) == 130, terminated.communicate()[1]
    assert sorted(p.name for p in tmp_path.iterdir()) == []

    killed = _start_export_and_wait_for_stage(world, tmp_path)
    killed.kill()
    killed.wait(timeout=60)
    left = [p for p in tmp_path.iterdir() if p.name.endswith(".staging")]
    assert left, "SIGKILL cannot clean up: a staging folder is expected here"
    assert clean_stale_stages(tmp_path / "out") == left  # what the next run to this --out does first
    assert list(tmp_path.iterdir()) == []


def _few_pairs(world: World, folder: Path, count: int = 20) -> list[str]:
    lines = world.pairs.read_text().splitlines()
    (folder / "pairs.csv").write_text("\n".join(lines[: count + 1]) + "\n")
    return ["--pairs", str(folder / "pairs.csv"), "--images-root", str(world.pairs.parent)]


def test_verify_parity_fails_when_a_listed_artifact_is_missing(world: World, tmp_path: Path) -> None:
    export = copy_export(world, tmp_path)
    edit_manifest(export, lambda m: m["artifacts"].append({**m["artifacts"][0], "path": "onnx/model_gone.onnx"}))
    done = run_cli(["verify-parity", str(export), *_few_pairs(world, tmp_path)], tmp_path)
    assert done.returncode == 1, done.stderr[-2000:]
    report = json.loads((export / "parity" / "report.json").read_text())
    rows = {row["label"]: row for row in report["artifacts"]}
    assert rows["onnx/model_gone.onnx"]["status"] == "missing" and rows["onnx/model_gone.onnx"]["passed"] is False
    assert rows["onnx/model_fp32.onnx"]["passed"] is True
    assert report["passed"] is False


def test_benchmark_that_measures_nothing_is_an_error_and_keeps_the_earlier_report(world: World, tmp_path: Path) -> None:
    export = copy_export(world, tmp_path)
    garbage = b"this is not an ONNX model\n" * 64
    (export / "onnx" / "model_fp32.onnx").write_bytes(garbage)  # with a matching hash: only the backend can refuse it
    edit_manifest(export, lambda m: m["artifacts"][0].update(sha256=hashlib.sha256(garbage).hexdigest(), bytes=len(garbage)))
    (export / "benchmark").mkdir()
    (export / "benchmark" / "benchmark.json").write_text('{"earlier": "good report"}\n')
    before = snapshot(tmp_path)
    done = run_cli(["benchmark-latency", str(export), "--no-torch", "--iters", "1", "--batch-sizes", "1"], tmp_path)
    check_outcome(done, 4, "nothing could be measured", tmp_path, before)
