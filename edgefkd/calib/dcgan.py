"""The DCGAN face generator of the `gan-face-generate` package, rewritten here.

The package (MIT, https://pypi.org/project/gan-face-generate/) ships weights of the
standard PyTorch-tutorial DCGAN generator trained on the synthetic DigiFace-1M faces
(64x64 RGB in [-1, 1]). Importing the package itself would pull torchvision and wandb,
so edgefkd only reads its weights file: located through the installed distribution's
file list, loaded with `torch.load(weights_only=True)`.

Generation is deterministic per seed: latent vectors come from a CPU `torch.Generator`
in fixed blocks of BLOCK rows, and the network runs on the same blocks, so face i of a
seed never depends on how many faces were asked for (a smaller set is a prefix of a
larger one).
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np

from ..errors import InputError
from ..fileio import sha256_file

if TYPE_CHECKING:
    import torch

PACKAGE = "gan-face-generate"
WEIGHTS_NAME = "gan_face_generate/weights.tar"
INSTALL_HINT = f"pip install --no-deps {PACKAGE}"
LATENT_SIZE = 100  # nz of the trained generator
FEATURE_MAPS = 64  # ngf of the trained generator
OUTPUT_SIZE = 64  # the generator draws 64x64 faces
BLOCK = 64  # latent rows drawn and generated together; fixed so outputs are batch-independent


@dataclass(frozen=True)
class GeneratorWeights:
    """Where the generator weights were found and what they are."""

    path: Path
    sha256: str
    package_version: str


def locate_weights() -> GeneratorWeights:
    """Find `gan_face_generate/weights.tar` without importing the package."""
    try:
        dist = importlib.metadata.distribution(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise InputError(
            f"synthetic calibration faces need the generator weights of the '{PACKAGE}' package; "
            f"install it with: {INSTALL_HINT}"
        ) from None
    for entry in dist.files or ():
        if entry.as_posix() == WEIGHTS_NAME:
            path = Path(str(dist.locate_file(entry))).resolve()
            if path.is_file():
                return GeneratorWeights(path, sha256_file(path), dist.version)
    raise InputError(
        f"the installed '{PACKAGE}' {dist.version} has no {WEIGHTS_NAME}; reinstall it with: {INSTALL_HINT}"
    )


def build_generator() -> "torch.nn.Module":
    """The 5-layer DCGAN generator: z (nz,1,1) -> 4 -> 8 -> 16 -> 32 -> 64x64 RGB, tanh."""
    from torch import nn

    layers: list[nn.Module] = []
    channels = [LATENT_SIZE, FEATURE_MAPS * 8, FEATURE_MAPS * 4, FEATURE_MAPS * 2, FEATURE_MAPS]
    for index, (c_in, c_out) in enumerate(zip(channels, channels[1:])):
        # The first layer lifts the 1x1 latent to 4x4; the others double the resolution.
        stride, padding = (1, 0) if index == 0 else (2, 1)
        layers += [
            nn.ConvTranspose2d(c_in, c_out, 4, stride, padding, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(True),
        ]
    layers += [nn.ConvTranspose2d(FEATURE_MAPS, 3, 4, 2, 1, bias=False), nn.Tanh()]

    class Generator(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            # `main` keeps the checkpoint's key names (main.0.weight, main.1.running_mean, ...).
            self.main = nn.Sequential(*layers)

        def forward(self, z: "torch.Tensor") -> "torch.Tensor":
            return self.main(z)

    return Generator()


def load_generator(weights: GeneratorWeights) -> "torch.nn.Module":
    """The generator with the package's trained weights, in eval mode, float32, on CPU."""
    import torch

    try:
        checkpoint = torch.load(weights.path, weights_only=True, map_location="cpu")
        state = checkpoint["netG_state_dict"]
    except Exception as exc:  # a damaged or foreign file: say which one, in one line
        raise InputError(f"cannot read generator weights {weights.path}: {exc}".splitlines()[0]) from None
    # Weights saved from nn.DataParallel carry a `module.` prefix.
    state = {key.removeprefix("module."): value for key, value in state.items()}
    generator = build_generator()
    try:
        generator.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise InputError(f"generator weights {weights.path} do not fit the DCGAN generator: {exc}".splitlines()[0]) from None
    return generator.float().eval()


def generate_faces64(generator: "torch.nn.Module", n: int, seed: int) -> Iterator[np.ndarray]:
    """Yield blocks of (<=BLOCK, 64, 64, 3) uint8 RGB faces, n faces in total, for `seed`."""
    import torch

    rng = torch.Generator(device="cpu").manual_seed(seed)
    produced = 0
    with torch.inference_mode():
        while produced < n:
            # Always draw and run a full block so face i depends only on (seed, i).
            z = torch.randn(BLOCK, LATENT_SIZE, 1, 1, generator=rng, dtype=torch.float32)
            images = generator(z)[: n - produced]
            pixels = ((images.clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)
            produced += pixels.shape[0]
            yield pixels.permute(0, 2, 3, 1).contiguous().numpy()
