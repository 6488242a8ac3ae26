"""Pair sources: insightface .bin (restricted unpickler), LFW pairs.txt, CSV."""

from __future__ import annotations

import csv
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from edgefkd.errors import InputError
from edgefkd.verify.datasets import load_bin_pairs, load_pairs


class _PlantMarker:
    """A pickle payload that would create a file if it were ever called."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _csv_rows(pairs_csv: Path) -> list[dict[str, str]]:
    with open(pairs_csv, newline="") as fh:
        return list(csv.DictReader(fh))


def test_bin_and_csv_describe_the_same_pairs(pairs_bin, pairs_csv):
    from_bin, from_csv = load_pairs(pairs_bin), load_pairs(pairs_csv)
    assert from_bin.describe() | {"source": None, "format": None} == from_csv.describe() | {"source": None, "format": None}
    np.testing.assert_array_equal(from_bin.pairs, from_csv.pairs)
    np.testing.assert_array_equal(from_bin.is_same, from_csv.is_same)
    # Each unique image decodes to the same pixels from the .bin bytes and from the file.
    for i in (0, len(from_csv.images) - 1):
        np.testing.assert_array_equal(from_bin.decode(i), from_csv.decode(i))


def test_malicious_bin_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.bin"
    for protocol in (2, 4):
        evil.write_bytes(pickle.dumps(([b"x", b"y"], [True], _PlantMarker(marker)), protocol=protocol))
        with pytest.raises(InputError, match="unsafe"):
            load_bin_pairs(evil)
        evil.write_bytes(pickle.dumps((_PlantMarker(marker), [True]), protocol=protocol))
        with pytest.raises(InputError, match=r"refusing to load global (posix|nt|os)\.system"):
            load_pairs(evil)
    assert not marker.exists()


def test_bin_refuses_other_types_and_bad_layout(tmp_path):
    path = tmp_path / "x.bin"
    path.write_bytes(pickle.dumps(({"a": 1}, [True])))
    with pytest.raises(InputError, match="list of encoded images"):
        load_bin_pairs(path)
    path.write_bytes(pickle.dumps(([b"a", b"b", b"c"], [True])))
    with pytest.raises(InputError, match="two per pair"):
        load_bin_pairs(path)
    path.write_bytes(b"not a pickle at all")
    with pytest.raises(InputError):
        load_bin_pairs(path)


def test_bin_accepts_protocol2_bytes_and_bytearray(tmp_path, pairs_bin):
    real = load_bin_pairs(pairs_bin)
    a, b = real.images[real.pairs[0, 0]], real.images[real.pairs[1, 1]]
    path = tmp_path / "p2.bin"
    # protocol 2 spells bytes as _codecs.encode(..., 'latin1'), bytearray via builtins.
    path.write_bytes(pickle.dumps(([a, bytearray(b), b, a], [True, False]), protocol=2))
    loaded = load_bin_pairs(path)
    assert loaded.num_pairs == 2 and len(loaded.images) == 2
    assert loaded.pairs.tolist() == [[0, 1], [1, 0]]
    assert loaded.is_same.tolist() == [True, False]


def _lfw_tree(tmp_path: Path, pairs_csv: Path) -> tuple[Path, list[str]]:
    """An LFW-style tree <root>/<name>/<name>_NNNN.jpg (symlinks) and the lines of its pairs."""
    rows = _csv_rows(pairs_csv)[:20]
    numbers: dict[str, tuple[str, int]] = {}
    root = tmp_path / "lfw"
    for row in rows:
        for f in (row["file_a"], row["file_b"]):
            if f not in numbers:
                name = f"person{len(numbers) % 3}"
                count = sum(1 for n, _ in numbers.values() if n == name) + 1
                numbers[f] = (name, count)
                (root / name).mkdir(parents=True, exist_ok=True)
                (root / name / f"{name}_{count:04d}.jpg").symlink_to(pairs_csv.parent / f)
    lines = []
    for row in rows:
        (na, ia), (nb, ib) = numbers[row["file_a"]], numbers[row["file_b"]]
        # The LFW line shape encodes the label; names are made up, so use the 4-token form
        # for different pairs and keep same pairs only when the made-up names agree.
        if row["is_same"] == "1" and na == nb:
            lines.append(f"{na}\t{ia}\t{ib}")
        elif row["is_same"] == "0":
            lines.append(f"{na}\t{ia}\t{nb}\t{ib}")
    return root, lines


def test_lfw_pairs_txt_both_forms(tmp_path, pairs_csv):
    root, lines = _lfw_tree(tmp_path, pairs_csv)
    assert any(len(l.split()) == 3 for l in lines) and any(len(l.split()) == 4 for l in lines)
    plain = tmp_path / "plain.txt"
    plain.write_text("\n".join(lines) + "\n")
    headed = tmp_path / "pairs.txt"
    headed.write_text(f"1\t{len(lines) // 2}\n" + "\n".join(lines[: 2 * (len(lines) // 2)]) + "\n")
    a = load_pairs(plain, images_root=root)
    b = load_pairs(headed, images_root=root)
    assert a.kind == b.kind == "lfw"
    assert a.num_pairs == len(lines) and b.num_pairs == 2 * (len(lines) // 2)
    assert a.is_same.tolist() == [len(l.split()) == 3 for l in lines]
    assert a.decode(0).shape == (112, 112, 3)
    headed.write_text(f"10\t300\n{lines[0]}\n{lines[1]}\n")
    with pytest.raises(InputError, match="header promises 6000"):
        load_pairs(headed, images_root=root)
    with pytest.raises(InputError, match="not found"):
        load_pairs(plain, images_root=tmp_path / "nowhere")


def test_csv_with_images_root_and_errors(tmp_path, pairs_csv):
    rows = _csv_rows(pairs_csv)
    elsewhere = tmp_path / "list.csv"
    elsewhere.write_text("file_a,file_b,is_same\n" + "".join(f"{r['file_a']},{r['file_b']},{'true' if r['is_same'] == '1' else 'false'}\n" for r in rows))
    moved = load_pairs(elsewhere, images_root=pairs_csv.parent)
    np.testing.assert_array_equal(moved.is_same, load_pairs(pairs_csv).is_same)
    with pytest.raises(InputError, match="not found"):
        load_pairs(elsewhere)
    (tmp_path / "bad.csv").write_text("a,b\nx,y\n")
    with pytest.raises(InputError, match="file_a,file_b,is_same"):
        load_pairs(tmp_path / "bad.csv")
    (tmp_path / "label.csv").write_text(f"file_a,file_b,is_same\n{rows[0]['file_a']},{rows[0]['file_b']},maybe\n")
    with pytest.raises(InputError, match="is_same"):
        load_pairs(tmp_path / "label.csv", images_root=pairs_csv.parent)
    (tmp_path / "pairs.json").write_text("{}")
    with pytest.raises(InputError, match="unknown pairs format"):
        load_pairs(tmp_path / "pairs.json")
