"""Alignment: a similarity transform from the 5 landmarks to the template."""

from __future__ import annotations

import numpy as np

from dlbox.tasks.face.align import ARCFACE_112, align, similarity_transform, template


def test_similarity_transform_recovers_rotation_scale_and_shift():
    a, s, t = np.deg2rad(17), 1.7, np.array([12.0, -5.0])
    rot = s * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    src = np.random.default_rng(0).uniform(0, 100, (5, 2))
    m = similarity_transform(src, src @ rot.T + t)
    assert np.allclose(m[:, :2], rot) and np.allclose(m[:, 2], t)


def test_aligned_astronaut_has_her_landmarks_on_the_template(detector, astronaut):
    (face,) = detector.detect(astronaut)
    for mode in ("arcface112", "facenet160"):
        points, size = template(mode)
        m = similarity_transform(face.landmarks, points)
        moved = face.landmarks @ m[:, :2].T + m[:, 2]
        assert np.allclose(moved.mean(0), points.mean(0))  # least squares: centroid onto centroid
        eyes = moved[1] - moved[0]
        assert abs(np.degrees(np.arctan2(eyes[1], eyes[0]))) < 2  # her tilted head comes out upright
        # 5 points, 4 degrees of freedom: her proportions are not the template's, within 6% of the crop.
        assert np.abs(moved - points).max() < 0.06 * size
        crop = align(astronaut, face, mode)
        assert crop.size == (size, size)
        # The crop is of her face: re-detected there, with the eyes near the template's eyes.
        (again,) = detector.detect(crop)
        assert np.abs(again.landmarks[:2] - points[:2]).max() < 0.06 * size
    assert template("arcface112")[0] is ARCFACE_112
    assert align(astronaut, face, "box160").size == (160, 160)


def test_training_photos_are_detected_and_aligned_once_into_a_cache(astronaut, tmp_path, monkeypatch, detector):
    from PIL import Image
    from skimage import data

    from dlbox.tasks.face.data import align_files

    monkeypatch.setenv("DLBOX_HOME", str(tmp_path / "home"))
    astronaut.save(tmp_path / "a.jpg")
    Image.fromarray(data.coffee()).save(tmp_path / "c.jpg")
    files = [str(tmp_path / "a.jpg"), str(tmp_path / "c.jpg")]
    crops, skipped = align_files(files, "arcface112", detector)
    assert list(crops) == files[:1] and skipped == [(files[1], "no face found")]
    assert Image.open(crops[files[0]]).size == (112, 112)

    class NoDetector:
        def detect(self, img):
            raise AssertionError("the cache should have answered")

    assert align_files(files, "arcface112", NoDetector()) == (crops, skipped)
