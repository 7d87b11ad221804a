"""``semfocus map``: a tile-wise focus map of one image, as a float32 TIFF grid, a CSV
(row, column, y, x, score, score_low, score_high, certainty, weight) and an overlay picture with a colour bar.

All numbers come from :func:`napari_semfocus.jobs.map.map_image`, as in the Focus map widget.
Several images (or ``--workers`` / ``--scheduler`` / ``--resume``) give one CSV table of every
file's tiles, a ``path`` column first, mapped on a dask cluster and written as the maps come
(:class:`napari_semfocus.jobs.distributed.MapTable`).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..errors import SemFocusError
from ..jobs.distributed import MapTable, map_input
from ..jobs.inputs import plan_files
from ..jobs.map import MapSettings, map_image
from ..jobs.score import MODEL_METHOD
from ..progress import run_to_end
from ..scale import parse_magnification
from ..scoring.devices import DEVICE_CHOICES
from ..scoring.focus_map import DEFAULT_MODE
from ..scoring.map_files import check_overlay, write_csv, write_overlay_png, write_tiff
from ..scoring.map_grid import MODES
from ..scoring.measures import MEASURES
from ..scoring.preprocess import TILE_HW
from .common import (
    add_precision_arg,
    add_scaleout_args,
    chosen_precision,
    eprint,
    run_table,
    scaled_out,
    tile_progress,
)


def register(sub) -> None:
    """Add ``map`` to the ``semfocus`` parser."""
    p = sub.add_parser("map", help="tile-wise focus map of one image (TIFF grid, CSV, overlay PNG)")
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="image file (TIFF, PNG, JPEG); stacks: --slice. Several files: one "
                        "--csv table of all their tiles")
    p.add_argument("--magnification",
                   help="magnification (default: from the file's SEM metadata)")
    p.add_argument("--checkpoint", help="model file (.safetensors); default: the shipped model")
    p.add_argument("--measure", choices=sorted(MEASURES),
                   help="map a classical measure instead of the model")
    p.add_argument("--device", default="auto", choices=DEVICE_CHOICES)
    add_precision_arg(p)
    p.add_argument("--tile", type=int, nargs=2, metavar=("H", "W"), default=None,
                   help="tile height and width in pixels (default 240 320)")
    p.add_argument("--stride", type=int, nargs=2, metavar=("H", "W"), default=None,
                   help="tile step in pixels (default: half a tile)")
    p.add_argument("--mode", default=DEFAULT_MODE, choices=MODES,
                   help="crop: score every tile's crop, what the frame's score is made of "
                        "(exact); shared: one trunk pass pooled per tile, scored by the model's "
                        "map head (about 4x faster at half-tile stride, within ~0.1-0.25 points "
                        "per tile on average, single tiles up to ~1.7 off; a model without a map "
                        f"head scores crops) (default: {DEFAULT_MODE})")
    p.add_argument("--slice", type=int, default=0, help="slice of a stack to map (default 0)")
    p.add_argument("--output", "-o", help="float32 TIFF of the score grid (NaN: not scored)")
    p.add_argument("--csv", help="CSV: row,column,y,x,score,score_low,score_high,certainty,"
                                 "weight (y, x: tile centre pixel; score_low..score_high: the "
                                 "tile's interval, certainty its width; empty without "
                                 "intervals; weight: coverage x structure weight)")
    p.add_argument("--png", help="overlay picture: the image, the coloured map and a colour bar")
    p.add_argument("--colormap", default="magma", help="matplotlib colormap (default magma)")
    p.add_argument("--alpha", type=float, default=0.5, help="opacity of the map in the PNG")
    add_scaleout_args(p)
    p.set_defaults(func=cmd_map)


def cmd_map(args) -> int:
    table = len(args.paths) > 1 or scaled_out(args)
    if table and (args.output or args.png or not args.csv):
        raise SemFocusError("several images (or --workers, --scheduler, --resume) are mapped into "
                            "one table: give --csv, not --output or --png.")
    if not (args.output or args.csv or args.png):
        raise SemFocusError("nothing to write: give --output, --csv and/or --png.")
    check_overlay(args.colormap, args.alpha, ("--colormap", "--alpha"))
    files = plan_files(args.paths, parse_magnification(args.magnification))
    tile = tuple(args.tile) if args.tile else TILE_HW
    if min(tile) < 32:
        raise SemFocusError(f"--tile {' '.join(map(str, tile))} is too small; use at least "
                            "32 32 (pixels, height and width).")
    if args.stride and min(args.stride) < 1:
        raise SemFocusError(f"--stride {' '.join(map(str, args.stride))} is not two whole "
                            "numbers of at least 1 (pixels, height and width).")
    method = args.measure or MODEL_METHOD
    settings = MapSettings(None, (), method, args.checkpoint, args.device, args.mode, tile,
                           tuple(args.stride) if args.stride else None, chosen_precision(args),
                           backend=args.backend)
    if table:
        return run_table(args, MapTable(settings, args.slice), files, args.csv, "--csv")
    image = map_input(files[0], args.slice, method)
    fmap = run_to_end(map_image(replace(settings, image=image)),
                      tile_progress("map", lambda s: f"semfocus: {s.text}")).fmap
    if args.output:
        write_tiff(fmap, args.output)
    if args.csv:
        write_csv(fmap, args.csv)
    if args.png:
        write_overlay_png(image.data, fmap, args.png, args.colormap, args.alpha)
    finite = fmap.scores[np.isfinite(fmap.scores)]
    interval = fmap.extra.get("interval")
    width = (f"; interval width (certainty) {np.nanmin(fmap.certainty):.2f}.."
             f"{np.nanmax(fmap.certainty):.2f}" if fmap.low is not None
             else f"; intervals: {interval}")
    eprint(f"semfocus map: {fmap.shape[0]} x {fmap.shape[1]} tiles, score "
           f"{finite.min():.3g}..{finite.max():.3g} (mean {finite.mean():.3g}){width}")
    return 0
