"""Data-bar detection for SEM images whose metadata does not say how tall the bar is.

SEM software burns a *data bar* into the bottom of the saved frame: a strip of one background
colour (black, white or light grey) with text, a scale bar and often a logo, usually separated
from the micrograph by a one- or two-pixel line. It is not part of the specimen and must be left
out when focus is scored. FEI/Thermo files give its height in their metadata
(:mod:`.sem_metadata`); for everything else :func:`detect_databar_rows` finds it.

How: the *flatness* of every row near the bottom is measured, i.e. the fraction of its pixels
that hold exactly the row's most common value. Rows of a micrograph
are not flat (detector noise alone spreads them over many levels); rows of a data bar are mostly
background with a little text. The bar is the block of flat rows that reaches the bottom edge
(a few rows of dense text or edge artefacts may interrupt it), that holds some text (not a blank
strip of black specimen), and whose rows mostly share one background colour. No Qt, no napari.
"""

from __future__ import annotations

import numpy as np

from .frames import check_values, grey_frames

FLAT_FRACTION = 0.55  # a row is "flat" when this fraction of it lies near its most common value
MAX_GAP_ROWS = 4  # non-flat rows tolerated inside the bar (dense text, logos, edge artefacts)
MIN_BAR_ROWS = 8  # thinner strips are not data bars
MAX_BAR_FRACTION = 0.4  # a data bar never covers more than this fraction of the frame height
TEXT_FRACTION = 0.02  # some row of the bar must have this much non-background (text) in it


def row_flatness(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row (flatness, dominant value) of a 2-D frame.

    ``flatness[i]`` is the fraction of row ``i`` that holds exactly its most common value. A data
    bar is drawn by software, so its background is one exact value; a micrograph row, even of a
    smooth specimen, is spread over many values by detector noise.
    """
    f = np.asarray(frame)
    ordered = np.sort(f, axis=1)
    flatness = np.empty(f.shape[0])
    level = np.empty(f.shape[0], dtype=ordered.dtype)
    for i, row in enumerate(ordered):
        starts = np.flatnonzero(np.r_[True, row[1:] != row[:-1], True])
        runs = np.diff(starts)
        k = int(runs.argmax())
        flatness[i] = runs[k] / row.size
        level[i] = row[starts[k]]
    return flatness, level


def detect_databar_rows(image, name: str = "image") -> int:
    """Rows of the data bar at the bottom of ``image`` (2-D, stack or RGB; the first frame of a
    stack is used), or 0 when it has none."""
    frame = grey_frames(image, name)[0]  # in its own dtype: no float copy of a large frame
    check_values(frame, name)
    height = frame.shape[0]
    search = max(MIN_BAR_ROWS, int(height * MAX_BAR_FRACTION))
    bottom = frame[height - search :]
    flatness, level = row_flatness(bottom)
    flat = flatness >= FLAT_FRACTION

    # walk up from the bottom edge: the bar is the flat block reaching it, gaps allowed
    top = None  # index (within ``bottom``) of the highest flat row of the bar
    gap = 0
    ended = False  # found a run of non-flat rows above the bar (the micrograph)
    for i in range(search - 1, -1, -1):
        if flat[i]:
            top, gap = i, 0
        else:
            gap += 1
            if gap > MAX_GAP_ROWS:
                ended = True
                break
    if top is None or not ended:
        # nothing flat, or flat all the way up the search window: a flat image, not a bar
        return 0
    rows = search - top
    if rows < MIN_BAR_ROWS:
        return 0
    bar_flat = flat[top:]
    _, counts = np.unique(level[top:][bar_flat], return_counts=True)
    same_colour = counts.max() / counts.sum()  # rows sharing the bar's background colour
    has_text = np.any(1.0 - flatness[top:][bar_flat] >= TEXT_FRACTION)
    if bar_flat.mean() < 0.8 or same_colour < 0.6 or not has_text:
        return 0
    return int(rows)


def databar_rectangle(height: int, width: int, rows: int) -> np.ndarray:
    """Corners (row, column) of the data bar of a ``height`` x ``width`` frame whose bottom
    ``rows`` rows are the bar, in pixel coordinates (pixel centres at integers): shows the user
    what scoring leaves out."""
    top = height - rows - 0.5
    bottom, right = height - 0.5, width - 0.5
    return np.array([[top, -0.5], [top, right], [bottom, right], [bottom, -0.5]], dtype=float)
