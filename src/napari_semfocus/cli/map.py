"""``semfocus map``: a tile-wise focus map of one image, as a float32 TIFF grid, a CSV
(row, column, y, x, score, certainty) and an overlay picture with a colour bar.

All numbers come from :func:`napari_semfocus.tiling.focus_map`, as in the Focus map widget.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from ..errors import SemFocusError


def register(sub) -> None:
    """Add ``map`` to the ``semfocus`` parser."""
    from ..scoring.devices import DEVICE_CHOICES
    from ..scoring.focus_map import MODES
    from ..scoring.measures import MEASURES

    p = sub.add_parser("map", help="tile-wise focus map of one image (TIFF grid, CSV, overlay PNG)")
    p.add_argument("path", metavar="PATH", help="image file (TIFF, PNG, JPEG); stacks: --slice")
    p.add_argument("--magnification", type=float,
                   help="magnification (default: from the file's SEM metadata)")
    p.add_argument("--checkpoint", help="model file (.safetensors); default: the shipped model")
    p.add_argument("--measure", choices=sorted(MEASURES),
                   help="map a classical measure instead of the model")
    p.add_argument("--device", default="auto", choices=DEVICE_CHOICES)
    p.add_argument("--tile", type=int, nargs=2, metavar=("H", "W"), default=None,
                   help="tile height and width in pixels (default 240 320)")
    p.add_argument("--stride", type=int, nargs=2, metavar=("H", "W"), default=None,
                   help="tile step in pixels (default: half a tile)")
    p.add_argument("--mode", default="shared", choices=MODES,
                   help="shared: one trunk pass pooled per tile (fast); crop: score every tile")
    p.add_argument("--slice", type=int, default=0, help="slice of a stack to map (default 0)")
    p.add_argument("--output", "-o", help="float32 TIFF of the score grid (NaN: not scored)")
    p.add_argument("--csv", help="CSV: row,column,y,x,score,certainty (y, x: tile centre pixel)")
    p.add_argument("--png", help="overlay picture: the image, the coloured map and a colour bar")
    p.add_argument("--colormap", default="magma", help="matplotlib colormap (default magma)")
    p.add_argument("--alpha", type=float, default=0.5, help="opacity of the map in the PNG")
    p.set_defaults(func=cmd_map)


def cmd_map(args) -> int:
    from ..io.images import read_image
    from ..scoring.focus_map import focus_map, run_to_end
    from ..scoring.preprocess import TILE_HW

    if not (args.output or args.csv or args.png):
        raise SemFocusError("nothing to write: give --output, --csv and/or --png.")
    if not 0.0 <= args.alpha <= 1.0:
        raise SemFocusError(f"--alpha {args.alpha} is not between 0 and 1.")
    img = read_image(args.path)
    data = img.data
    frame = _pick_slice(data, args.slice, args.path)
    tile = tuple(args.tile) if args.tile else TILE_HW
    if min(tile) < 32 or (args.stride and min(args.stride) < 1):
        raise SemFocusError(f"--tile must be at least 32 32 and --stride at least 1 1, got "
                            f"{' '.join(map(str, tile))} / {args.stride}.")
    databar = img.databar_rows
    if args.measure:
        scorer, mag, method = None, args.magnification, args.measure
    else:
        from ..scoring.scorer import FocusScorer

        scorer = (FocusScorer.from_checkpoint(args.checkpoint, device=args.device)
                  if args.checkpoint else FocusScorer.default(device=args.device))
        mag = args.magnification if args.magnification is not None else img.magnification
        method = "model"
        print(f"semfocus: model {scorer.name} on {scorer.device_name}", file=sys.stderr)
    fmap = run_to_end(focus_map(scorer, frame, mag, tile, args.stride, args.mode,
                                exclude_bottom_rows=databar, method=method, name=str(args.path)))
    if args.output:
        write_tiff(fmap, args.output)
    if args.csv:
        from ..scoring.checkpoint import atomic_write

        atomic_write(Path(args.csv), lambda tmp: Path(tmp).write_text(fmap.to_csv(), "utf-8"))
    if args.png:
        write_overlay_png(frame, fmap, args.png, args.colormap, args.alpha)
    finite = fmap.scores[np.isfinite(fmap.scores)]
    print(f"semfocus map: {fmap.shape[0]} x {fmap.shape[1]} tiles, score "
          f"{finite.min():.3g}..{finite.max():.3g} (mean {finite.mean():.3g})", file=sys.stderr)
    return 0


def _pick_slice(data: np.ndarray, index: int, path) -> np.ndarray:
    from ..scoring.preprocess import is_rgb

    spatial = data.ndim - (1 if is_rgb(data) else 0)
    if spatial <= 2:
        return data
    stack = data.reshape((-1,) + data.shape[-(3 if is_rgb(data) else 2):])
    if not 0 <= index < len(stack):
        raise SemFocusError(f"{path}: --slice {index} is outside the stack's {len(stack)} slices.")
    return stack[index]


def write_tiff(fmap, path) -> None:
    """The score grid as a float32 TIFF, the grid settings as JSON in its description."""
    import tifffile

    from ..scoring.checkpoint import atomic_write

    desc = json.dumps(fmap.summary())
    atomic_write(Path(path), lambda tmp: tifffile.imwrite(
        tmp, fmap.scores.astype(np.float32), description=desc, metadata=None))


def write_overlay_png(frame, fmap, path, colormap: str = "magma", alpha: float = 0.5) -> None:
    """The image in grey, the map over it (each cell centred on its tile) and a colour bar."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    from ..scoring.preprocess import as_frames

    grey = as_frames(frame, str(path))[0]
    (y0, x0), (y1, x1) = fmap.world_extent()
    model_scale = fmap.method == "model"
    lims = (0.0, 10.0) if model_scale else _range(fmap.scores)
    h, w = grey.shape
    fig = Figure(figsize=(8, 8 * h / w + 0.6), dpi=120)
    ax = fig.add_subplot(1, 1, 1)
    lo, hi = np.percentile(grey, [0.5, 99.5])
    ax.imshow(grey, cmap="gray", vmin=lo, vmax=hi if hi > lo else lo + 1,
              extent=(-0.5, w - 0.5, h - 0.5, -0.5), interpolation="antialiased")
    im = ax.imshow(np.ma.masked_invalid(fmap.scores), cmap=colormap, vmin=lims[0], vmax=lims[1],
                   alpha=alpha, extent=(x0, x1, y1, y0), interpolation="nearest")
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)
    ax.set_axis_off()
    label = "focus score (0-10)" if model_scale else f"{fmap.method} (larger = sharper)"
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02, label=label)
    ax.set_title(f"{Path(str(path)).stem}: {fmap.shape[0]} x {fmap.shape[1]} tiles of "
                 f"{fmap.tile_hw[0]} x {fmap.tile_hw[1]}, stride {fmap.stride_hw[0]} x "
                 f"{fmap.stride_hw[1]}, {fmap.mode if model_scale else fmap.method}", fontsize=9)
    fig.tight_layout()
    from ..scoring.checkpoint import atomic_write

    atomic_write(Path(path), lambda tmp: fig.savefig(tmp, format="png"))


def _range(a):
    v = a[np.isfinite(a)]
    return (float(v.min()), float(v.max())) if v.size and v.max() > v.min() else (0.0, 1.0)
