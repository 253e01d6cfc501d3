"""Scanning class folders: labels, verification, skipped files with reasons, one-line errors for bad layouts."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlbox.data.build import build_dataset
from dlbox.data.folders import check_image, scan_class_folders
from dlbox.data.samples import write_sample
from tests.conftest import assert_user_error
from tests.data.helpers import copy_tree, jpeg_bytes, run_main


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("s") / "shapes"
    write_sample("shapes", out, n_per_class=20)
    return out


def test_labels_follow_sorted_folder_names_and_nested_images_count(tmp_path):
    for cls in ("zebra", "Apple", "mango"):
        (tmp_path / cls / "sub").mkdir(parents=True)
        (tmp_path / cls / "a.JPG").write_bytes(jpeg_bytes())
        (tmp_path / cls / "sub" / "b.jpeg").write_bytes(jpeg_bytes((0, 90, 0)))
    scan = scan_class_folders(tmp_path)
    assert scan.classes == ["Apple", "mango", "zebra"]
    found = sorted((Path(p).relative_to(tmp_path.resolve()).parts[0], y) for p, y in scan.samples)
    assert found == [(c, i) for i, c in enumerate(scan.classes) for _ in range(2)]
    assert scan.skipped == []


def test_every_kind_of_bad_file_is_skipped_listed_and_counted(shapes, tmp_path):
    root = copy_tree(shapes, tmp_path / "bad")
    (root / "circle" / "notes.txt").write_text("hello")
    (root / "circle" / "fake.jpg").write_text("not an image")
    (root / "cross" / "empty.png").write_bytes(b"")
    good_png = (root / "star" / "0000.png").read_bytes()
    (root / "star" / "cut.png").write_bytes(good_png[: len(good_png) // 2])
    good_jpg = jpeg_bytes(size=(96, 96), noise=True)
    (root / "triangle" / "cut.jpg").write_bytes(good_jpg[: len(good_jpg) * 7 // 10])  # headers whole, pixels cut
    (root / "README.md").write_text("loose file, not in a class folder")
    s = build_dataset(root, tmp_path / "out")
    reasons = {Path(x["file"]).relative_to(root.resolve()).as_posix(): x["reason"] for x in s["skipped"]}
    assert s["skipped_count"] == 6 == len(reasons)
    assert "not an image extension" in reasons["circle/notes.txt"]
    assert "not an image (content" in reasons["circle/fake.jpg"]
    assert reasons["cross/empty.png"] == "empty file"
    assert "unreadable" in reasons["star/cut.png"] and "unreadable" in reasons["triangle/cut.jpg"]
    assert reasons["README.md"] == "not in a class folder"
    assert s["train"]["images"] + s["val"]["images"] == 80  # every good image kept


def test_build_output_lists_the_skipped_files_with_the_count(shapes, tmp_path, capsys):
    root = copy_tree(shapes, tmp_path / "bad")
    (root / "circle" / "fake.jpg").write_text("not an image")
    res = run_main(capsys, "data", "build", root, "--out", tmp_path / "out")
    assert res.returncode == 0, res.stderr
    assert "skipped 1 file(s)" in res.stdout and "fake.jpg: not an image" in res.stdout


def test_a_good_jpeg_passes_the_check_and_a_cut_one_does_not(tmp_path):
    good = jpeg_bytes(size=(96, 96), noise=True)
    (tmp_path / "ok.jpeg").write_bytes(good)
    (tmp_path / "cut.jpeg").write_bytes(good[: len(good) * 7 // 10])
    assert check_image(tmp_path / "ok.jpeg") is None
    assert "truncated" in check_image(tmp_path / "cut.jpeg")


def test_hidden_files_are_ignored(shapes, tmp_path):
    root = copy_tree(shapes, tmp_path / "h")
    (root / "circle" / ".DS_Store").write_bytes(b"\0\0")
    (root / ".cache").mkdir()
    scan = scan_class_folders(root)
    assert len(scan.samples) == 80 and scan.skipped == [] and ".cache" not in scan.classes


def test_a_class_of_only_unreadable_files_is_an_error(shapes, tmp_path, capsys):
    root = copy_tree(shapes, tmp_path / "u")
    (root / "blank").mkdir()
    (root / "blank" / "x.png").write_text("text")
    assert_user_error(run_main(capsys, "data", "build", root, "--out", tmp_path / "o"), "'blank'", "no readable images")


def test_an_empty_class_folder_is_a_one_line_error_naming_it(shapes, tmp_path, capsys):
    root = copy_tree(shapes, tmp_path / "c")
    (root / "hexagon").mkdir()
    line = assert_user_error(run_main(capsys, "data", "build", root, "--out", tmp_path / "o"), "'hexagon'", "empty")
    assert "remove the folder or add images" in line


def test_a_single_class_is_a_one_line_error(shapes, tmp_path, capsys):
    copy_tree(shapes / "circle", tmp_path / "one" / "circle")
    assert_user_error(run_main(capsys, "data", "build", tmp_path / "one", "--out", tmp_path / "o"), "at least 2 classes")


def test_a_folder_without_class_folders_is_a_one_line_error(tmp_path, capsys):
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "a.jpg").write_bytes(jpeg_bytes())
    assert_user_error(run_main(capsys, "data", "build", tmp_path / "flat", "--out", tmp_path / "o"), "no class folders")


def test_a_wrong_path_is_a_one_line_error_from_the_real_cli(tmp_path, cli):
    assert_user_error(cli("data", "build", tmp_path / "nope", "--out", tmp_path / "o"), "does not exist")


def test_a_file_instead_of_a_folder_is_a_one_line_error(tmp_path, capsys):
    (tmp_path / "f.jpg").write_bytes(jpeg_bytes())
    assert_user_error(run_main(capsys, "data", "build", tmp_path / "f.jpg", "--out", tmp_path / "o"), "is not a folder")
