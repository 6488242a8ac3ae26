"""The export manifest: `DIR/manifest.json`, the single record of what an export holds.

Schema (stable; other commands read it):
{"edgefkd_version",
 "model": {"name", "arch", "checkpoint", "checkpoint_sha256", "embedding_size", "params"},
 "preprocess": {"input_size": [H, W], "mean": [...], "std": [...], "channel_order", "input_format"},
 "artifacts": [{"path" (relative to DIR), "format": a name from the table in edgefkd/formats,
                "precision": "fp32|fp16|int8", "sha256", "bytes",
                "parity": {"cosine_min", "cosine_mean", "max_abs", "samples"} | null,
                ... optional extra keys (e.g. "status", "quantization", "build")}]}
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import __version__
from .contract import PreprocessContract
from .errors import InputError, IntegrityError, MissingArtifactError
from .fileio import atomic_write_json, check_plain_path, sha256_file

MANIFEST_NAME = "manifest.json"
PRECISIONS = ("fp32", "fp16", "int8")


@dataclass
class ArtifactEntry:
    path: str
    format: str
    precision: str
    sha256: str | None = None
    bytes: int | None = None
    parity: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "path": self.path,
            "format": self.format,
            "precision": self.precision,
            "sha256": self.sha256,
            "bytes": self.bytes,
            "parity": self.parity,
        }
        d.update(self.extra)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ArtifactEntry":
        known = {"path", "format", "precision", "sha256", "bytes", "parity"}
        return cls(
            path=d["path"],
            format=d["format"],
            precision=d["precision"],
            sha256=d.get("sha256"),
            bytes=d.get("bytes"),
            parity=d.get("parity"),
            extra={k: v for k, v in d.items() if k not in known},
        )

    @classmethod
    def for_file(cls, root: Path, path: Path, fmt: str, precision: str, **extra: Any) -> "ArtifactEntry":
        """Entry for a written artifact (a file, or a directory such as a Core ML package);
        the size counts the format's companion files too (OpenVINO and NCNN weights)."""
        from .fileio import artifact_digest

        digest, size = artifact_digest(path)
        try:
            from .formats import get_format

            companions = [c for c in get_format(fmt).companions(path) if c.is_file()]
        except InputError:
            companions = []
        if companions:
            # The main file's hash says nothing about its weights (OpenVINO and NCNN .bin):
            # record theirs too, by name beside the artifact.
            extra = {"companions_sha256": {c.name: sha256_file(c) for c in companions}, **extra}
            size += sum(c.stat().st_size for c in companions)
        return cls(
            path=str(path.relative_to(root)),
            format=fmt,
            precision=precision,
            sha256=digest,
            bytes=size,
            extra=dict(extra),
        )


@dataclass
class Manifest:
    model: dict[str, Any]
    preprocess: PreprocessContract
    artifacts: list[ArtifactEntry] = field(default_factory=list)
    edgefkd_version: str = __version__

    def to_dict(self) -> dict[str, Any]:
        return {
            "edgefkd_version": self.edgefkd_version,
            "model": self.model,
            "preprocess": self.preprocess.to_dict(),
            "artifacts": [a.to_dict() for a in self.artifacts],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Manifest":
        try:
            return cls(
                model=dict(d["model"]),
                preprocess=PreprocessContract.from_dict(d["preprocess"]),
                artifacts=[ArtifactEntry.from_dict(a) for a in d.get("artifacts", [])],
                edgefkd_version=d.get("edgefkd_version", "?"),
            )
        except (KeyError, TypeError) as exc:
            raise InputError(f"malformed manifest: missing {exc}") from None

    def write(self, directory: str | Path) -> Path:
        path = Path(directory) / MANIFEST_NAME
        atomic_write_json(path, self.to_dict())
        return path

    @classmethod
    def read(cls, directory: str | Path) -> "Manifest":
        path = Path(directory)
        if path.is_dir():
            path = path / MANIFEST_NAME
        if not path.is_file():
            raise InputError(f"no {MANIFEST_NAME} in {path.parent}: is this an edgefkd export directory?")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise InputError(f"{path} is not valid JSON: {exc}") from None
        return cls.from_dict(data)

    @staticmethod
    def contained_path(export_dir: str | Path, entry: ArtifactEntry) -> Path:
        """Where `entry` is, refused (IntegrityError) unless inside `export_dir`.

        A manifest is untrusted input: an absolute path, a `..`, a control character or a
        symlink leading out of the export folder is refused.
        """
        root = Path(export_dir).resolve()
        if not isinstance(entry.path, str) or not entry.path:
            raise IntegrityError(f"manifest artifact path {entry.path!r} is not a path: refused")
        check_plain_path(entry.path, "artifact path")
        relative = Path(entry.path)
        if relative.is_absolute() or entry.path.startswith(("/", "\\")) or ".." in relative.parts:
            raise IntegrityError(f"manifest artifact path {entry.path!r} is not a plain path inside {export_dir}: refused")
        path = (root / relative).resolve()
        if not path.is_relative_to(root):
            raise IntegrityError(f"manifest artifact {entry.path!r} leads out of {export_dir} (a symlink): refused")
        return path

    @staticmethod
    def artifact_file(export_dir: str | Path, entry: ArtifactEntry, verify_hash: bool = True) -> Path:
        """The artifact of `entry` (a file or a package folder), inside `export_dir` and, by
        default, checked against its recorded sha256; MissingArtifactError when it is gone."""
        from .fileio import artifact_digest

        path = Manifest.contained_path(export_dir, entry)
        if not path.exists():
            raise MissingArtifactError(f"{entry.path} is listed in {Path(export_dir) / MANIFEST_NAME} but the file is missing")
        if verify_hash:
            if not entry.sha256:
                raise IntegrityError(f"the manifest records no sha256 for {entry.path}; pass --no-verify-hash to use it unchecked")
            if artifact_digest(path)[0] != entry.sha256:
                raise IntegrityError(
                    f"{entry.path} does not match the sha256 in the manifest: it changed after export; "
                    "re-export, or pass --no-verify-hash to use it anyway"
                )
            for name, recorded in (entry.extra.get("companions_sha256") or {}).items():
                companion = Manifest.contained_path(
                    export_dir, ArtifactEntry(str(Path(entry.path).with_name(name)), entry.format, entry.precision)
                )
                if not companion.is_file() or sha256_file(companion) != recorded:
                    raise IntegrityError(f"{companion.name} (part of {entry.path}) is missing or changed after export")
        return path

    def upsert(self, entry: ArtifactEntry) -> None:
        """Add an artifact, replacing an earlier entry with the same path."""
        self.artifacts = [a for a in self.artifacts if a.path != entry.path] + [entry]

    def find(self, fmt: str | None = None, precision: str | None = None) -> list[ArtifactEntry]:
        return [
            a
            for a in self.artifacts
            if (fmt is None or a.format == fmt) and (precision is None or a.precision == precision)
        ]
