"""Loading a student from whatever a training run left behind, safely.

- `torch.load(weights_only=True, map_location="cpu")` only: a checkpoint that needs code
  execution to unpickle is refused, CUDA-saved tensors land on the CPU.
- State dicts nested under the usual wrapper keys are unwrapped; `module.`, `_orig_mod.`
  and `backbone.` prefixes are stripped (the variant matching the architecture best wins).
- Strict by default: missing/unexpected keys and shape mismatches are listed in one line.
- TorchScript files and `torch.export` programs (.pt2) load without --arch; a .pt2 is
  checked and loaded so that nothing in it can run code (pt2_safety.py).
- `--arch path/to/file.py:factory` or `package.module:factory` for a user's own network.
  Such an arch imports and runs code, so one read from a manifest (a file someone else
  may have written) is refused unless the user trusts it (`check_manifest_arch`).
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from ..contract import PreprocessContract, override_contract
from ..errors import CheckpointError, InputError
from ..fileio import sha256_file
from .registry import ARCFACE_CONTRACT, get_model_config

WRAPPER_KEYS = ("state_dict", "model", "net_state_dict", "backbone", "model_ema", "module", "ema")
PREFIXES = ("module.", "_orig_mod.", "backbone.", "model.")
#: BatchNorm's step counter does not affect inference; old checkpoints often lack it.
IGNORABLE_MISSING_SUFFIXES = (".num_batches_tracked",)


@dataclass
class LoadedStudent:
    module: Any  # torch.nn.Module in eval mode, on CPU
    contract: PreprocessContract
    name: str
    arch: str
    checkpoint: Path
    checkpoint_sha256: str
    embedding_size: int
    params: int
    missing_keys: list[str] = field(default_factory=list)
    unexpected_keys: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def model_info(self) -> dict[str, Any]:
        """The manifest's "model" block."""
        return {
            "name": self.name,
            "arch": self.arch,
            "checkpoint": str(self.checkpoint),
            "checkpoint_sha256": self.checkpoint_sha256,
            "embedding_size": self.embedding_size,
            "params": self.params,
        }


def _is_tensor_dict(obj: Any) -> bool:
    import torch

    return isinstance(obj, Mapping) and len(obj) > 0 and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    )


def _candidate_state_dicts(obj: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Every tensor dict reachable through the known wrapper keys (depth-first)."""
    found: list[tuple[str, dict[str, Any]]] = []
    if _is_tensor_dict(obj):
        found.append((path or "<root>", dict(obj)))
    elif isinstance(obj, Mapping):
        # A training checkpoint that mixes tensors with metadata (epoch, optimizer...):
        # its tensor entries alone may be the state dict.
        tensors = {k: v for k, v in obj.items() if _is_tensor_dict({k: v})}
        if tensors and len(tensors) >= 4:
            found.append((path or "<root>", tensors))
        for key in WRAPPER_KEYS:
            if key in obj:
                found += _candidate_state_dicts(obj[key], f"{path}[{key!r}]")
    return found


def _strip_variants(sd: dict[str, Any]) -> list[dict[str, Any]]:
    """The state dict with known prefixes stripped, in every combination.

    For each prefix two variants: all keys kept (prefix removed where present), and only
    the prefixed keys (a whole training model `backbone.* + head.*` -> its backbone).
    """
    variants = [sd]
    for _ in range(3):  # prefixes can stack: module._orig_mod.backbone.
        new = []
        for v in variants:
            for prefix in PREFIXES:
                if any(k.startswith(prefix) for k in v):
                    new.append({k[len(prefix):] if k.startswith(prefix) else k: t for k, t in v.items()})
                    new.append({k[len(prefix):]: t for k, t in v.items() if k.startswith(prefix)})
        variants += [n for n in new if n not in variants]
    return variants


def read_state_dict(checkpoint: Path) -> Any:
    """torch.load a checkpoint safely; one-line errors for what cannot be read."""
    import pickle

    import torch

    if not zipfile.is_zipfile(checkpoint):
        with open(checkpoint, "rb") as fh:
            head = fh.read(2)
        if not head.startswith(b"\x80"):  # torch.save writes a zip; pre-1.6 files are pickles
            raise CheckpointError(
                f"{checkpoint} is not a readable PyTorch checkpoint: it is neither a torch.save zip archive nor a pickle"
            )
    try:
        return torch.load(checkpoint, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as exc:
        text = " ".join(str(exc).split())
        found = re.search(r"GLOBAL ([\w.]+)", text)
        if found:
            raise CheckpointError(
                f"{checkpoint} needs arbitrary code execution to unpickle ({found.group(1)}), refused: "
                "edgefkd loads only tensors and plain containers (weights_only=True)"
            ) from exc
        raise CheckpointError(f"{checkpoint} is not a readable PyTorch checkpoint: {torch_message(exc)}") from exc
    except Exception as exc:  # the unpickler raises anything (IndexError, KeyError...) on garbage
        raise CheckpointError(f"{checkpoint} is not a readable PyTorch checkpoint: {torch_message(exc)}") from exc


def torch_message(exc: BaseException, limit: int = 200) -> str:
    """torch's error text on one line, without its boilerplate, cut at a word boundary."""
    text = " ".join(str(exc).split())
    text = re.sub(r"\s*\(Could this error message be improved\?.*$", "", text)
    text = re.sub(r"^Weights only load failed\.\s*", "", text)
    if not text:
        return type(exc).__name__
    if len(text) > limit:
        text = text[:limit].rsplit(" ", 1)[0] + " ..."
    return text


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
    return any(n.endswith("/constants.pkl") for n in names) and any("/code/" in n for n in names)


def is_code_arch(arch: str | None) -> bool:
    """True for `file.py:factory` / `package.module:factory`: an arch that imports and runs code."""
    return bool(arch) and ":" in str(arch) and not str(arch).startswith(":")


def check_manifest_arch(arch: str | None, source: str | Path, trusted: bool) -> None:
    """Refuse an arch read from a manifest that would import code, unless the user trusts it.

    A registered name or a TorchScript/.pt2 program runs nothing of the manifest's choosing;
    `file.py:factory` would import and call whatever the manifest's author wrote.
    """
    if is_code_arch(arch) and not trusted:
        target = str(arch).rpartition(":")[0]
        raise InputError(
            f"{source} names the architecture {arch!r}, which would import and run {target}: refused; "
            f"pass --arch {arch} (or --trust-manifest) if you trust that code"
        )


def _load_user_factory(spec: str) -> Callable[..., Any]:
    """`path/to/file.py:factory` or `package.module:factory` (the user's own code, run by choice)."""
    target, _, attr = spec.rpartition(":")
    if not target or not attr:
        raise InputError(f"--arch {spec!r}: expected a registered name, file.py:factory or package.module:factory")
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise InputError(f"--arch {spec!r}: file {path} not found")
        mod_name = f"edgefkd_user_arch_{abs(hash(str(path.resolve())))}"
        module_spec = importlib.util.spec_from_file_location(mod_name, path)
        if module_spec is None or module_spec.loader is None:
            raise InputError(f"--arch {spec!r}: cannot import {path}")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[mod_name] = module
        try:
            module_spec.loader.exec_module(module)
        except Exception as exc:  # the user's file failed to import: report it in one line
            raise InputError(f"--arch {spec!r}: importing {path} failed: {type(exc).__name__}: {exc}") from None
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            raise InputError(f"--arch {spec!r}: cannot import {target}: {exc}") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise InputError(f"--arch {spec!r}: {target} has no callable {attr!r}")
    return factory


def _summarise(keys: list[str], limit: int = 6) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", ... (+{len(keys) - limit} more)" if len(keys) > limit else "")


def _apply_state_dict(module: Any, raw: Any, checkpoint: Path, strict: bool) -> tuple[list[str], list[str]]:
    model_keys = set(module.state_dict().keys())
    candidates = _candidate_state_dicts(raw)
    if not candidates:
        kind = type(raw).__name__
        keys = list(raw.keys())[:8] if isinstance(raw, Mapping) else []
        raise CheckpointError(
            f"{checkpoint} holds no state dict ({kind}{' with keys ' + str(keys) if keys else ''}); "
            f"expected tensors, optionally under one of {list(WRAPPER_KEYS)}"
        )
    best: dict[str, Any] | None = None
    best_score = (-1, 0)
    for _, sd in candidates:
        for variant in _strip_variants(sd):
            # Most keys matched first; among equals, fewest keys left over.
            score = (len(model_keys & set(variant)), -len(set(variant) - model_keys))
            if score > best_score:
                best, best_score = variant, score
    assert best is not None
    missing = sorted(k for k in model_keys - set(best) if not k.endswith(IGNORABLE_MISSING_SUFFIXES))
    unexpected = sorted(set(best) - model_keys)
    reference = module.state_dict()
    mismatched = [
        f"{k}: checkpoint {tuple(best[k].shape)} vs model {tuple(reference[k].shape)}"
        for k in sorted(model_keys & set(best))
        if tuple(best[k].shape) != tuple(reference[k].shape)
    ]
    if mismatched:
        raise CheckpointError(
            f"{checkpoint} does not fit this architecture: {len(mismatched)} shape mismatches, e.g. {_summarise(mismatched, 3)}"
        )
    if best_score[0] == 0:
        raise CheckpointError(
            f"{checkpoint} shares no parameter names with this architecture (checkpoint keys e.g. {_summarise(sorted(best), 4)})"
        )
    if strict and (missing or unexpected):
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys ({_summarise(missing)})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys ({_summarise(unexpected)})")
        raise CheckpointError(f"{checkpoint} does not match the architecture: {'; '.join(parts)}; pass --non-strict to load anyway")
    module.load_state_dict(best, strict=False)
    return missing, unexpected


def _probe_output(module: Any, contract: PreprocessContract) -> int:
    """Run one batch of 2 and check the output is (N, D); return D."""
    import torch

    x = torch.from_numpy(contract.example_input(2))
    try:
        with torch.inference_mode():
            out = module(x)
    except Exception as exc:
        raise InputError(
            f"the model fails on a (2, 3, {contract.input_size[0]}, {contract.input_size[1]}) input: "
            f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
        ) from None
    if not isinstance(out, torch.Tensor):
        raise InputError(f"the model returns {type(out).__name__}, expected one embedding tensor of shape (N, D)")
    if out.ndim != 2 or out.shape[0] != 2:
        raise InputError(f"the model's output has shape {tuple(out.shape)} for a batch of 2, expected (N, D)")
    return int(out.shape[1])


def load_student(
    checkpoint: str | Path,
    arch: str | None = None,
    *,
    strict: bool = True,
    input_size: str | tuple[int, int] | None = None,
    mean: str | tuple[float, float, float] | None = None,
    std: str | tuple[float, float, float] | None = None,
    channel_order: str | None = None,
    name: str | None = None,
) -> LoadedStudent:
    """Build the student network and load its weights; see the module docstring."""
    import torch

    checkpoint = Path(checkpoint)
    if checkpoint.is_dir():
        raise InputError(f"checkpoint {checkpoint} is a folder; give the checkpoint file inside it")
    if not checkpoint.is_file():
        raise InputError(f"checkpoint not found: {checkpoint}")
    warnings: list[str] = []
    missing: list[str] = []
    unexpected: list[str] = []

    if checkpoint.suffix == ".pt2":
        from .pt2_safety import load_exported_program

        program = load_exported_program(checkpoint)
        module = program.module()
        base = ARCFACE_CONTRACT
        # The exported program knows its input shape; take H and W from it.
        try:
            spec = [s for s in program.graph_signature.input_specs if s.kind.name == "USER_INPUT"][0]
            val = [n for n in program.graph.nodes if n.name == spec.arg.name][0].meta["val"]
            base = override_contract(base, input_size=(int(val.shape[2]), int(val.shape[3])))
        except Exception:  # the program's metadata is optional; options/defaults then apply
            pass
        arch_name = arch or "torch.export"
    elif _is_torchscript(checkpoint):
        try:
            module = torch.jit.load(str(checkpoint), map_location="cpu")
        except Exception as exc:
            raise CheckpointError(f"{checkpoint} is a damaged or incomplete TorchScript archive: {torch_message(exc)}") from exc
        base = ARCFACE_CONTRACT
        arch_name = arch or "torchscript"
    else:
        if arch is None:
            raise InputError(f"{checkpoint} is a weights checkpoint: pass --arch (see `edgefkd list-models`)")
        if is_code_arch(arch):
            factory = _load_user_factory(arch)
            base = ARCFACE_CONTRACT
            if input_size is not None:
                base = override_contract(base, input_size=input_size)
            try:
                module = factory()
            except Exception as exc:
                raise InputError(f"--arch {arch}: calling the factory failed: {type(exc).__name__}: {exc}") from None
            if not isinstance(module, torch.nn.Module):
                raise InputError(f"--arch {arch}: the factory returned {type(module).__name__}, not a torch.nn.Module")
        else:
            config = get_model_config(arch)
            base = config.contract
            kwargs: dict[str, Any] = {}
            if input_size is not None:
                size = override_contract(base, input_size=input_size).input_size
                if size != base.input_size:
                    if not config.flexible_input:
                        raise InputError(f"{arch} only takes {base.input_size[0]}x{base.input_size[1]} inputs, got {size[0]}x{size[1]}")
                    kwargs["input_size"] = size
            module = config.factory(**kwargs)
        raw = read_state_dict(checkpoint)
        missing, unexpected = _apply_state_dict(module, raw, checkpoint, strict)
        if missing or unexpected:
            warnings.append(
                f"loaded non-strictly: {len(missing)} missing ({_summarise(missing)}), "
                f"{len(unexpected)} unexpected ({_summarise(unexpected)})"
            )
        arch_name = arch

    if (checkpoint.suffix == ".pt2" or arch_name == "torchscript") and mean is None and std is None:
        warnings.append(
            f"no --mean/--std given for a {arch_name} model: assuming {list(base.mean)}/{list(base.std)} (0-255 units)"
        )
    contract = override_contract(base, input_size=input_size, mean=mean, std=std, channel_order=channel_order)
    if checkpoint.suffix != ".pt2":  # an exported program's module is already in eval form and refuses .eval()
        module.eval()
    embedding_size = _probe_output(module, contract)
    params = sum(int(p.numel()) for p in module.parameters()) if hasattr(module, "parameters") else 0
    return LoadedStudent(
        module=module,
        contract=contract,
        name=name or checkpoint.stem,
        arch=arch_name,
        checkpoint=checkpoint.resolve(),
        checkpoint_sha256=sha256_file(checkpoint),
        embedding_size=embedding_size,
        params=params,
        missing_keys=missing,
        unexpected_keys=unexpected,
        warnings=warnings,
    )

