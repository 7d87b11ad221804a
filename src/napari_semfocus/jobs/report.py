"""The acquisition report: one self-contained HTML file from a score table (``semfocus report``,
``semfocus watch --report``, the Live QC widget's Report button).

:func:`build_report` reads nothing but the table's rows, the frames they name (thumbnails, focus
maps) and, where given, the gate; it returns the page as text. Every picture is a PNG inside the
page (a ``data:`` URI) and the styles are inline: no external asset, so the file opens offline
and can be mailed. Contents: the summary (frames, accepted / rejected at the gate's precision,
errors, the model's and the gate's SHA-256, the time span from the frames' modification times),
the score over time with the gate's threshold, a histogram, cards of every rejected frame and of
the lowest-scoring frames (thumbnail, score, worst region, focus map), and a table per folder.
Focus maps come from :meth:`FocusScorer.focus_map` (the one prediction path).
"""

from __future__ import annotations

import base64
import csv
import datetime as _dt
import html
import io
import os
import threading
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..errors import SemFocusError
from ..gate.file import Gate
from ..io.files import file_sha256
from ..io.frames import as_frames
from ..io.images import read_image
from ..progress import Progress, Status
from ..scoring.checkpoint import checkpoint_fingerprint
from .score import MODEL_METHOD, load_method

LOWEST = 12  # cards of the lowest-scoring frames
MAX_REJECTED_CARDS = 200  # beyond this, rejected frames are counted, not shown
THUMB_W = 220
ACCEPT_COLOUR, REJECT_COLOUR, NEUTRAL_COLOUR = "#2ca02c", "#d62728", "#1f77b4"


@dataclass(frozen=True)
class ReportSettings:
    rows: tuple  # dicts of a score table (path, index, score; optional magnification,
    # worst_region, accepted, error)
    source: str  # the table (or folder) the report is of, for the title
    base: str = "."  # paths that are not found as given are looked for relative to this folder
    gate: Gate | None = None
    checkpoint: str | None = None  # the model that scored (None: the shipped one)
    model: dict | None = None  # its fingerprint, when known (else from the gate or checkpoint)
    maps: bool = True  # focus maps on the cards (runs the model)
    device: str = "auto"
    precision: str = "auto"
    backend: str = "auto"  # auto | torch | onnxruntime (scoring.backends.resolve_backend)


@dataclass
class Frame:
    """One scored row of the table, with what the report adds."""

    path: str
    index: int
    score: float | None
    worst: float | None
    magnification: float | None
    accepted: bool | None
    error: str
    file: Path | None = None  # where the frame was found
    mtime: float | None = None
    cards: dict = field(default_factory=dict)  # "thumb", "map": data URIs

    @property
    def folder(self) -> str:
        return os.path.dirname(self.path) or "."


def read_score_table(path) -> list[dict]:
    """The rows of a score table (``semfocus score``, ``gate apply`` or ``watch``), checked to
    have a ``path`` and a ``score`` column."""
    path = Path(path)
    if not path.is_file():
        raise SemFocusError(f"{path}: no such score table.")
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            rows = list(reader)
            columns = reader.fieldnames or []
    except (UnicodeDecodeError, csv.Error) as exc:
        raise SemFocusError(f"{path} is not a UTF-8 CSV table ({exc}).") from None
    missing = [c for c in ("path", "score") if c not in columns]
    if missing:
        raise SemFocusError(f"{path} has no column {', '.join(missing)}: give a table written "
                            "by semfocus score, gate apply or watch.")
    return rows


def build_report(settings: ReportSettings, cancel: threading.Event | None = None
                 ) -> Generator[Status | Progress, None, str]:
    """The report as HTML text (yields progress while focus maps are computed)."""
    s = settings
    frames = [_frame(r, k) for k, r in enumerate(s.rows)]
    for f in frames:
        f.file = _find(f.path, s.base)
        f.mtime = f.file.stat().st_mtime if f.file is not None else None
    scored = [f for f in frames if f.score is not None]
    rejected = [f for f in scored if f.accepted is False]
    lowest = sorted(scored, key=lambda f: f.score)[:LOWEST]
    shown = list({id(f): f for f in rejected[:MAX_REJECTED_CARDS] + lowest}.values())
    scorer = None
    if s.maps and shown:
        checkpoint = s.checkpoint
        scorer = yield from load_method(MODEL_METHOD, checkpoint, s.device, s.precision, s.backend)
    for k, f in enumerate(shown):
        if cancel is not None and cancel.is_set():
            break
        _card_pictures(f, scorer)
        yield Progress(f.path, k, len(shown), 1, 1)
    yield Status("writing the report…")
    return _page(s, frames, scored, rejected, lowest)


# ---- rows and frames -----------------------------------------------------------------------------
def _number(text) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if np.isfinite(value) else None


def _frame(row: dict, k: int) -> Frame:
    accepted = (row.get("accepted") or "").strip()
    index = _number(row.get("index"))
    return Frame(path=row.get("path") or f"(row {k + 2})", index=int(index or 0),
                 score=_number(row.get("score")), worst=_number(row.get("worst_region")),
                 magnification=_number(row.get("magnification")),
                 accepted=None if accepted == "" else accepted == "1",
                 error=(row.get("error") or "").strip())


def _find(path: str, base: str) -> Path | None:
    for candidate in (Path(path), Path(base) / path):
        if candidate.is_file():
            return candidate
    return None


def _card_pictures(f: Frame, scorer) -> None:
    """The thumbnail (and focus map) of a frame as data URIs; a frame that cannot be read says
    so instead."""
    if f.file is None:
        f.cards["note"] = "file not found"
        return
    try:
        img = read_image(f.file)
        frames = as_frames(img.data, str(f.file))
        frame = frames[min(f.index, len(frames) - 1)]
    except SemFocusError as exc:
        f.cards["note"] = str(exc)
        return
    grey = _thumbnail(frame)
    f.cards["thumb"] = _png_uri(grey)
    if scorer is None:
        return
    try:
        fmap = scorer.focus_map(frame, f.magnification, exclude_bottom_rows=img.databar_rows,
                                name=f.path)
    except SemFocusError as exc:
        f.cards["note"] = str(exc)
        return
    f.cards["map"] = _png_uri(_overlay(grey, frame.shape, fmap))


def _thumbnail(frame: np.ndarray) -> np.ndarray:
    """An 8-bit grey picture THUMB_W pixels wide (area-averaged, 0.5-99.5 % levels)."""
    h, w = frame.shape
    small = cv2.resize(frame, (THUMB_W, max(1, round(h * THUMB_W / w))),
                       interpolation=cv2.INTER_AREA)
    lo, hi = np.percentile(small, [0.5, 99.5])
    return np.clip(255 * (small - lo) / max(hi - lo, 1e-6), 0, 255).astype(np.uint8)


def _overlay(grey: np.ndarray, frame_hw, fmap) -> np.ndarray:
    """The focus map (magma, 0-10) over the grey thumbnail, each cell where its tile is."""
    (y0, x0), (y1, x1) = fmap.world_extent()
    h, w = grey.shape
    rows, cols = fmap.shape
    ys = (np.arange(h) + 0.5) * frame_hw[0] / h
    xs = (np.arange(w) + 0.5) * frame_hw[1] / w
    r = np.floor((ys - y0) / (y1 - y0) * rows).astype(int)
    c = np.floor((xs - x0) / (x1 - x0) * cols).astype(int)
    inside = (r[:, None] >= 0) & (r[:, None] < rows) & (c[None] >= 0) & (c[None] < cols)
    cells = fmap.scores[np.clip(r, 0, rows - 1)][:, np.clip(c, 0, cols - 1)]
    ok = inside & np.isfinite(cells)
    colour = colormaps["magma"](np.clip(np.nan_to_num(cells) / 10, 0, 1))[..., :3] * 255
    out = np.repeat(grey[..., None].astype(np.float32), 3, axis=2)
    out[ok] = 0.45 * out[ok] + 0.55 * colour[ok]
    return out.astype(np.uint8)


def _png_uri(picture: np.ndarray) -> str:
    rgb = picture if picture.ndim == 2 else cv2.cvtColor(picture, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".png", rgb)
    return "data:image/png;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


# ---- figures -------------------------------------------------------------------------------------
def _figure_uri(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _colours(frames) -> list[str]:
    return [NEUTRAL_COLOUR if f.accepted is None else ACCEPT_COLOUR if f.accepted
            else REJECT_COLOUR for f in frames]


def _time_plot(scored: list[Frame], gate: Gate | None) -> str:
    fig = Figure(figsize=(7.5, 2.8))
    ax = fig.add_subplot(111)
    times = [f.mtime for f in scored]
    if scored and all(t is not None for t in times):
        seconds = np.array(times) - min(times)
        minutes = seconds.max() >= 120
        x = seconds / 60 if minutes else seconds
        ax.set_xlabel(f"{'minutes' if minutes else 'seconds'} since the first frame "
                      "(file modification time)")
    else:
        x = np.arange(1, len(scored) + 1)
        ax.set_xlabel("frame (table order)")
    ax.scatter(x, [f.score for f in scored], s=14, c=_colours(scored), zorder=3)
    if gate is not None:
        ax.axhline(gate.threshold, color=REJECT_COLOUR, linestyle="--", linewidth=1.2,
                   label=f"gate threshold {gate.threshold:.2f}")
        ax.legend(loc="lower left", fontsize=8)
    ax.set_ylim(0, 10.3)
    ax.set_ylabel("focus score (0-10)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _figure_uri(fig)


def _histogram(scored: list[Frame], gate: Gate | None) -> str:
    fig = Figure(figsize=(4.2, 2.8))
    ax = fig.add_subplot(111)
    ax.hist([f.score for f in scored], bins=np.arange(0, 10.51, 0.5), color=NEUTRAL_COLOUR,
            edgecolor="white")
    if gate is not None:
        ax.axvline(gate.threshold, color=REJECT_COLOUR, linestyle="--", linewidth=1.2)
    ax.set_xlabel("focus score")
    ax.set_ylabel("frames")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    return _figure_uri(fig)


# ---- the page ------------------------------------------------------------------------------------
STYLE = """body{font-family:sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ccc}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;
text-align:left}.cards{display:flex;flex-wrap:wrap;gap:12px}.card{border:1px solid #ccc;
padding:6px;width:456px;font-size:12px}.card img{width:220px;margin-right:4px}
.reject{color:#fff;background:#d62728;padding:1px 6px;border-radius:3px}
.accept{color:#fff;background:#2ca02c;padding:1px 6px;border-radius:3px}.mono{font-family:monospace}"""


MAP_NOTE = ("<p style='font-size:12px'>Each card: the frame, and beside it (when maps are on) "
            "its focus map over it, one colour per tile, magma from dark (0) to light (10).</p>")
# marks the page with how many of its pictures the browser decoded (for a check in a browser)
LOADED_SCRIPT = ("<script>window.addEventListener('load',function(){var i=document.images,n=0;"
                 "for(var k=0;k<i.length;k++){if(i[k].complete&&i[k].naturalWidth>0)n++;}"
                 "document.body.setAttribute('data-pictures',n+'/'+i.length);});</script>")


def _model_record(s: ReportSettings) -> dict:
    if s.model is not None:
        return s.model
    if s.gate is not None:
        return s.gate.model
    try:
        return checkpoint_fingerprint(s.checkpoint)
    except SemFocusError:
        return {"name": str(s.checkpoint), "sha256": "unknown (file not found)"}


def _when(t: float) -> str:
    return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _summary(s: ReportSettings, frames, scored, rejected) -> list[tuple[str, str]]:
    model = _model_record(s)
    errors = [f for f in frames if f.error]
    times = [f.mtime for f in frames if f.mtime is not None]
    items = [("Frames scored", str(len(scored))), ("Errors (no score)", str(len(errors)))]
    if s.gate is not None or any(f.accepted is not None for f in scored):
        accepted = sum(f.accepted is True for f in scored)
        items.append(("Accepted / rejected", f"{accepted} / {len(rejected)}"))
    if s.gate is not None:
        g = s.gate
        items.append(("Gate", f"accept when {g.rule_score} >= {g.threshold:.4f}, target "
                              f"precision {g.target_precision:g} (calibrated precision "
                              f"{g.calibration.get('precision', float('nan')):.3f})"))
        if g.path is not None:
            items.append(("Gate SHA-256", f"{g.path.name}: {file_sha256(g.path)}"))
    items.append(("Model SHA-256", f"{model.get('name')}: {model.get('sha256')}"))
    if scored:
        sc = np.array([f.score for f in scored])
        items.append(("Scores", f"median {np.median(sc):.2f}, lowest {sc.min():.2f}, "
                                f"highest {sc.max():.2f}"))
    items.append(("Time span", f"{_when(min(times))} to {_when(max(times))} "
                               f"({(max(times) - min(times)) / 60:.1f} min)" if times
                  else "unknown (the frames were not found)"))
    return items


def _card(f: Frame) -> str:
    badge = ("" if f.accepted is None else '<span class="accept">accepted</span>' if f.accepted
             else '<span class="reject">rejected</span>')
    pics = "".join(f'<img src="{f.cards[k]}" alt="{k}">' for k in ("thumb", "map")
                   if k in f.cards)
    note = f"<div>{html.escape(f.cards['note'])}</div>" if "note" in f.cards else ""
    worst = "-" if f.worst is None else f"{f.worst:.2f}"
    where = f" [{f.index}]" if f.index else ""
    return (f'<div class="card"><div class="mono">{html.escape(f.path)}{where}</div>'
            f"<div>score <b>{f.score:.2f}</b>, worst region {worst} {badge}</div>{pics}{note}</div>")


def _folder_table(frames: list[Frame]) -> str:
    head = ("<tr><th>folder</th><th>frames</th><th>accepted</th><th>rejected</th><th>errors</th>"
            "<th>median score</th><th>lowest</th></tr>")
    body = []
    for folder in sorted({f.folder for f in frames}):
        fs = [f for f in frames if f.folder == folder]
        sc = [f.score for f in fs if f.score is not None]
        body.append("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in (
            folder, len(sc), sum(f.accepted is True for f in fs),
            sum(f.accepted is False for f in fs), sum(bool(f.error) for f in fs),
            f"{np.median(sc):.2f}" if sc else "-", f"{min(sc):.2f}" if sc else "-")) + "</tr>")
    return f"<table>{head}{''.join(body)}</table>"


def _page(s: ReportSettings, frames, scored, rejected, lowest) -> str:
    summary = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
                      for k, v in _summary(s, frames, scored, rejected))
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Acquisition report: "
             f"{html.escape(s.source)}</title><style>{STYLE}</style></head><body>",
             f"<h1>Acquisition report: {html.escape(s.source)}</h1>",
             f"<table>{summary}</table>"]
    if scored:
        parts.append(f'<h2>Score over time</h2><img src="{_time_plot(scored, s.gate)}" '
                     f'alt="score over time"> <img src="{_histogram(scored, s.gate)}" '
                     'alt="histogram">')
    if rejected or s.gate is not None:
        more = (f" (the first {MAX_REJECTED_CARDS} shown)"
                if len(rejected) > MAX_REJECTED_CARDS else "")
        parts.append(f"<h2>Rejected frames: {len(rejected)}{more}</h2>{MAP_NOTE}"
                     "<div class='cards'>"
                     + "".join(_card(f) for f in rejected[:MAX_REJECTED_CARDS]) + "</div>")
    parts.append(f"<h2>The {len(lowest)} lowest-scoring frames</h2>{MAP_NOTE}<div class='cards'>"
                 + "".join(_card(f) for f in lowest) + "</div>")
    errors = [f for f in frames if f.error]
    if errors:
        parts.append("<h2>Frames without a score</h2><table>" + "".join(
            f"<tr><td class='mono'>{html.escape(f.path)}</td><td>{html.escape(f.error)}</td>"
            "</tr>" for f in errors) + "</table>")
    parts.append(f"<h2>Per folder</h2>{_folder_table(frames)}")
    parts.append(f"<p style='color:#777;font-size:11px'>Written by napari-semfocus on "
                 f"{_when(_dt.datetime.now(_dt.timezone.utc).timestamp())}.</p>{LOADED_SCRIPT}"
                 "</body></html>")
    return "\n".join(parts)
