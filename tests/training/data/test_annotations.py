"""Expert annotations: the table, its CSV (saved and as users write it), summaries, labelled sets."""

from __future__ import annotations

import csv
import io

import cv2
import numpy as np
import pytest
import tifffile

from napari_semfocus.errors import SemFocusError
from napari_semfocus.training.data.annotations import (
    CSV_COLUMNS,
    Annotation,
    AnnotationTable,
)


# ---- the annotation table ---------------------------------------------------------------------
def test_add_replaces_same_slice_edit_remove():
    t = AnnotationTable()
    assert t.add(Annotation("series", 4, 5000, 9.5)) == 0
    assert t.add(Annotation("series", 5, 5000, 7)) == 1
    assert t.add(Annotation("series", 4, 5000, 8)) == 0  # same (layer, slice): replaced
    assert [(r.slice, r.score) for r in t] == [(4, 8.0), (5, 7.0)]
    t.set_score(1, 6.5)
    assert t.rows[1].score == 6.5
    with pytest.raises(SemFocusError, match="between 0 and 10"):
        t.set_score(1, 11)
    t.remove([0])
    assert [r.slice for r in t] == [5]
    with pytest.raises(SemFocusError, match="magnification"):
        Annotation("x", 0, 0, 5)


def test_csv_round_trip_exact_columns(tmp_path):
    t = AnnotationTable([Annotation("SEM focus series", 4, 5720, 9.5, "/data/series.tif"),
                         Annotation("my, layer", 0, 120000, 3.25)])
    path = t.save_csv(tmp_path / "ann.csv")
    text = path.read_text(encoding="utf-8")
    assert text.splitlines()[0] == "layer,slice,magnification,score,path"
    assert tuple(next(csv.reader(io.StringIO(text)))) == CSV_COLUMNS
    back = AnnotationTable.load_csv(path)
    assert [(r.layer, r.slice, r.magnification, r.score, r.path) for r in back] == [
        ("SEM focus series", 4, 5720.0, 9.5, "/data/series.tif"),
        ("my, layer", 0, 120000.0, 3.25, None)]
    assert not list(tmp_path.glob(".*.tmp"))


def test_folder_of_images_and_csv(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "images"
    folder.mkdir()

    cv2.imwrite(str(folder / "a.png"), rng.integers(0, 255, (64, 80), dtype=np.uint8))
    tifffile.imwrite(folder / "stack.tif", rng.integers(0, 255, (3, 64, 80), dtype=np.uint8))
    csv_path = tmp_path / "scores.csv"  # elsewhere: paths are relative to the image folder
    csv_path.write_text("path,magnification,score,index\na.png,2000,7.5,\nstack.tif,800,3,2\n")
    t = AnnotationTable.load_csv(csv_path, image_folder=folder)
    assert [(r.layer, r.slice, r.score) for r in t] == [("a.png", 0, 7.5), ("stack.tif", 2, 3.0)]
    assert t.rows[1].path == str((folder / "stack.tif").resolve())
    data = t.labelled_set()
    assert [f.shape for f in data.images] == [(64, 80), (64, 80)]
    np.testing.assert_array_equal(data.images[1], tifffile.imread(folder / "stack.tif")[2])
    assert list(data.groups) == [r.path for r in t]  # one group per image file
    # a layer that is open replaces the file's frame
    own = rng.random((50, 60)).astype(np.float32)
    np.testing.assert_array_equal(t.labelled_set({("a.png", 0): (own, 0)}).images[0], own)
    # its data bar (the layer's rows) is left out by the core, as for files
    assert t.labelled_set({("a.png", 0): (own, 12)}).images[0].shape == (38, 60)


def test_labelled_set_groups_by_image_so_the_split_is_by_image():
    frames = {("series", i): (np.random.default_rng(i).random((40, 50)), 0) for i in range(6)}
    frames.update({("other", i): (np.random.default_rng(9 + i).random((40, 50)), 0)
                   for i in range(3)})
    t = AnnotationTable(Annotation(layer, i, 5000, i) for layer, i in frames)
    data = t.labelled_set(frames)
    assert set(data.groups) == {"series", "other"}
    train_set, val_set = data.split_by_group(0.5, seed=0)
    assert set(train_set.groups).isdisjoint(val_set.groups)
    assert len(train_set) + len(val_set) == 9
    with pytest.raises(SemFocusError, match="not open and no image file"):
        AnnotationTable([Annotation("gone", 0, 5000, 5)]).labelled_set({})


def test_summary_spread_and_warnings():
    t = AnnotationTable()
    s = t.summary()
    assert s.count == 0 and not s.can_train and not s.can_validate
    for i, (score, mag) in enumerate([(9.5, 500), (8, 5000), (1, 20000), (5, 80000), (10, 5000)]):
        t.add(Annotation("series", i, mag, score))
    s = t.summary()
    assert dict(s.score_bins) == {"0–2": 1, "2–4": 0, "4–6": 1, "6–8": 0, "8–10": 3}
    assert dict(s.magnification_bands) == {"<1k": 1, "1k–10k": 2, "10k–50k": 1, "≥50k": 1}
    assert any("Too few to train" in w for w in s.warnings)
    assert any("Too few to validate" in w for w in s.warnings)
    for i in range(5):
        t.add(Annotation("other", i, 5000, 6))
    s = t.summary()
    assert s.can_train and s.can_validate and s.warnings == []
    assert s.text().startswith("10 annotations of 2 images.")


@pytest.mark.parametrize("content, problem", [
    ("layer,slice,score\nx,0,5\n", "lacks the column(s) magnification"),
    ("slice,magnification,score\n0,5000,5\n", "lacks the column(s) layer or path"),
    ("layer,slice,magnification,score\nx,0,5000,great\n", "line 2: score 'great' is not a number"),
    ("layer,slice,magnification,score\nx,0,5000,12\n", "line 2: score 12.0 is not between 0 and 10"),
    ("layer,slice,magnification,score\nx,0,-5,5\n", "line 2: magnification"),
    ("layer,slice,magnification,score\nx,1.5,5000,5\n", "slice 1.5 is not a whole number"),
    ("layer,slice,magnification,score\n", "has no rows"),
    (b"\x89PNG\r\n\x1a\n\x00\xff\xfe", "is not a readable CSV text file"),
    (None, "does not exist"),
])
def test_bad_csv_gives_one_sentence_naming_the_file(tmp_path, content, problem):
    path = tmp_path / "bad.csv"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(SemFocusError) as err:
        AnnotationTable.load_csv(path)
    message = str(err.value)
    assert str(path) in message and problem in message
    assert "\n" not in message and message.endswith(".") and message.count(". ") == 0
