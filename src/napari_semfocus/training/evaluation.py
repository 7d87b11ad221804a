"""Evaluating a focus model (and the classical measures) on a labelled manifest.

Reports RMSE overall and per magnification band, the mean within-series Spearman rho, the AUC
of sharp (label >= 8) versus blurred (label <= 5.5) frames, and the mean score on zero frames
(label 0). Classical measures are mapped to the 0-10 scale by an isotonic fit on one half of the
series and tested on the other half (and vice versa), so they are judged on data they were not
fitted on.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import roc_auc_score

from ..gate.calibrate import format_figure
from ..io.files import write_report as write_report_files
from ..io.images import read_image
from ..io.manifest import read_manifest
from ..scale import SCORE_MAX
from ..scoring.measures import MEASURES, measure

BANDS = (("<1k", 0, 1e3), ("1k-10k", 1e3, 1e4), ("10k-50k", 1e4, 5e4), (">=50k", 5e4, np.inf))
SHARP_MIN, BLURRED_MAX = 8.0, 5.5


def auc(scores_pos, scores_neg) -> float | None:
    """Area under the ROC curve (probability a positive outranks a negative; ties count half),
    by ``sklearn.metrics.roc_auc_score``; None without both classes."""
    pos, neg = np.asarray(scores_pos, float), np.asarray(scores_neg, float)
    if len(pos) == 0 or len(neg) == 0:
        return None
    truth = np.r_[np.ones(len(pos), bool), np.zeros(len(neg), bool)]
    return float(roc_auc_score(truth, np.concatenate([pos, neg])))


def metrics(pred, label, mags, series) -> dict:
    """All figures for one set of predictions on the 0-10 scale."""
    pred, label, mags = (np.asarray(a, float) for a in (pred, label, mags))
    series = np.asarray(series).astype(str)
    nonzero = label > 0
    out = {"n": int(len(label)), "rmse": _rmse(pred, label), "bands": {}}
    for name, lo, hi in BANDS:
        sel = (mags >= lo) & (mags < hi)
        out["bands"][name] = {"n": int(sel.sum()), "rmse": _rmse(pred[sel], label[sel])}
    rhos = []
    for s in np.unique(series[nonzero]):
        sel = nonzero & (series == s)
        if sel.sum() >= 3 and np.ptp(label[sel]) > 0:
            rho = spearmanr(pred[sel], label[sel]).statistic
            rhos.append(0.0 if np.isnan(rho) else float(rho))
    out["spearman_within_series"] = float(np.mean(rhos)) if rhos else None
    out["n_series"] = len(rhos)
    out["auc_sharp_vs_blurred"] = auc(pred[label >= SHARP_MIN], pred[nonzero & (label <= BLURRED_MAX)])
    zero = label == 0
    out["zero_frames_mean_score"] = float(pred[zero].mean()) if zero.any() else None
    out["rmse_sample_frames"] = _rmse(pred[nonzero], label[nonzero])
    top = label >= 10
    out["label10_bias"] = float(np.mean(pred[top] - label[top])) if top.any() else None
    return out


def breakdown(pred, label, keys) -> dict:
    """RMSE and mean error (bias) per value of ``keys`` (sample type, zero-frame kind...)."""
    pred, label, keys = np.asarray(pred, float), np.asarray(label, float), np.asarray(keys).astype(str)
    return {k: {"n": int((keys == k).sum()), "rmse": _rmse(pred[keys == k], label[keys == k]),
                "bias": float(np.mean(pred[keys == k] - label[keys == k]))}
            for k in sorted(set(keys.tolist()))}


def noise_bins(noise, n_bins: int = 4) -> np.ndarray:
    """Each frame's noise quartile (of these frames), named with its range: "q1 0.000-0.021"."""
    noise = np.asarray(noise, float)
    edges = np.quantile(noise, np.linspace(0, 1, n_bins + 1))
    idx = np.clip(np.searchsorted(edges, noise, side="right") - 1, 0, n_bins - 1)
    return np.array([f"q{i + 1} {edges[i]:.3f}-{edges[i + 1]:.3f}" for i in idx])


LABEL_BINS = ("(0, 2]", "(2, 4]", "(4, 6]", "(6, 8]", "(8, 10)", "10")


def label_bins(label) -> np.ndarray:
    """Each frame's part of the scale (frames that show sample, label > 0), one of
    :data:`LABEL_BINS`: the sharp sources ("10") apart, their mean error is the label-10 bias
    (sorted, the names follow the scale)."""
    label = np.asarray(label, float)
    idx = np.searchsorted((2, 4, 6, 8), label, side="left")
    idx[label >= SCORE_MAX] = len(LABEL_BINS) - 1
    return np.array(LABEL_BINS)[idx]


def _shows_sample(pred, label):
    pred, label = np.asarray(pred, float), np.asarray(label, float)
    return pred[label > 0], label[label > 0]


def _rmse(pred, label):
    return float(np.sqrt(np.mean((pred - label) ** 2))) if len(label) else None


def cross_fitted_isotonic(values, label, series) -> np.ndarray:
    """Map a raw measure to 0-10: isotonic fits on each half of the series, applied to the other."""
    values, label = np.asarray(values, float), np.asarray(label, float)
    uniq = np.unique(np.asarray(series).astype(str))
    rng = np.random.default_rng(0)
    half = set(rng.permutation(uniq)[: len(uniq) // 2].tolist())
    in_a = np.array([s in half for s in np.asarray(series).astype(str)])
    out = np.empty_like(values)
    for fit, test in ((in_a, ~in_a), (~in_a, in_a)):
        iso = IsotonicRegression(y_min=0, y_max=10, out_of_bounds="clip", increasing="auto")
        iso.fit(np.log10(np.abs(values[fit]) + 1e-12), label[fit])
        out[test] = iso.predict(np.log10(np.abs(values[test]) + 1e-12))
    return out


def evaluate_manifest(scorer, manifest, classical: bool = True, region: str = "whole") -> dict:
    """Score every file of ``manifest`` (path,magnification,label[,series]) and compute metrics."""
    rows = read_manifest(manifest, required=("path", "magnification", "label"))
    preds, raw = [], {name: [] for name in MEASURES} if classical else {}
    for row in rows:
        img = read_image(row["path"])
        preds.append(float(scorer.score(img.data, row["magnification"], region=region,
                                        exclude_bottom_rows=img.databar_rows, name=row["path"])[0]))
        for name in raw:
            raw[name].append(float(measure(img.data, name, img.databar_rows)[0]))
    label = np.array([r["label"] for r in rows])
    mags = np.array([r["magnification"] for r in rows])
    series = np.array([r.get("series") or r["path"] for r in rows])
    report = {"manifest": str(manifest), "model": scorer.name, "device": scorer.device_name,
              "region": region, "methods": {"model": metrics(preds, label, mags, series)}}
    if all(r.get("sample_type") for r in rows):  # made by make-dataset: per type, zero kinds
        types = np.array([r["sample_type"] if r["sample_type"] != "zero" else r.get("source", "zero")
                          for r in rows])
        report["model_by_sample_type"] = breakdown(preds, label, types)
    shown = _shows_sample(preds, label)  # the noise and label tables: frames that show sample
    if all(r.get("noise_level") not in (None, "") for r in rows):  # made by make-dataset
        noise = np.array([float(r["noise_level"]) for r in rows])
        report["model_by_noise"] = breakdown(*shown, noise_bins(noise[label > 0]))
    report["model_by_label"] = breakdown(*shown, label_bins(label[label > 0]))
    for name, values in raw.items():
        mapped = cross_fitted_isotonic(values, label, series)
        report["methods"][name] = metrics(mapped, label, mags, series)
    return report


BREAKDOWN_TITLES = {"model_by_sample_type": "sample type / zero kind",
                    "model_by_noise": "noise level (frames that show sample)",
                    "model_by_label": "label (frames that show sample)"}


def report_markdown(report: dict) -> str:
    """The report as a Markdown table (one row per method)."""
    bands = [b[0] for b in BANDS]
    head = ["method", "RMSE"] + [f"RMSE {b}" for b in bands] + ["within-series rho", "AUC", "zero frames"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, m in report["methods"].items():
        figures = [m["rmse"]] + [m["bands"][b]["rmse"] for b in bands]
        figures += [m["spearman_within_series"], m["auc_sharp_vs_blurred"],
                    m["zero_frames_mean_score"]]
        cells = [name] + [format_figure(v) for v in figures]
        lines.append("| " + " | ".join(cells) + " |")
    counts = ", ".join(f"{b}: {report['methods']['model']['bands'][b]['n']}" for b in bands)
    m = report["methods"]["model"]
    lines += ["", f"Model: RMSE on frames that show sample {format_figure(m['rmse_sample_frames'])}, "
              f"mean error on label-10 frames {format_figure(m['label10_bias'])}."]
    for key, title in BREAKDOWN_TITLES.items():
        if report.get(key):
            lines += ["", f"| {title} | n | RMSE | mean error |", "|---|---|---|---|"]
            lines += [f"| {k} | {v['n']} | {format_figure(v['rmse'])} | {v['bias']:+.2f} |"
                      for k, v in report[key].items()]
    lines.append("")
    lines.append(f"Model {report['model']} on {report['device']}, region {report['region']}; "
                 f"{report['methods']['model']['n']} frames ({counts}); "
                 f"{report['methods']['model']['n_series']} series.")
    return "\n".join(lines)


def write_report(report: dict, prefix=None) -> str:
    """Write PREFIX.json and PREFIX.md (when a prefix is given); return the Markdown."""
    text = report_markdown(report)
    if prefix:
        write_report_files(prefix, report, text + "\n")
    return text
