"""A fast stand-in for ``bench_suggest.py``: pick designs compared on many seeds in minutes.

A fine-tuning of ``bench_suggest.py`` takes ~3 minutes of one core, so five seeds are what a
session affords, and at five seeds which frames a design picks moves the result more than the
design does (docs/benchmarks/suggest.md). Here the fine-tuning is replaced by a ridge regression
of the lab's correction (lab score - model score) on the candidates' feature vectors and model
scores, fitted on the picks and applied to the held-out frames. Its held-out RMSE follows the
real one across runs (``--check LOG``: its correlation with the real runs of a ``bench_suggest``
log), which made it look fit to screen designs on seeds the real benchmark does not use.

    python benchmarks/bench_suggest_proxy.py --seeds $(seq 10 39) --cache proxy.npz
    python benchmarks/bench_suggest_proxy.py --seeds 0 1 2 3 4 --check docs/benchmarks/suggest-v5-runs.jsonl

Designs: ``random`` (the first N of the seeded permutation ``bench_suggest`` uses), ``shipped``
(``training/suggest.py``'s ``stratified_pick``: per score stratum informativeness x distance to
the picks) and ``typical`` (``bench_suggest.typical_pick``, tried in session 13: per stratum
typicality x sqrt(informativeness), no near copies).

What it showed (docs/benchmarks/suggest.md): on seeds 10-39 it favoured ``typical`` at every N;
the real fine-tuning on seeds 0-7 did not (better at N = 12, worse at 24 and 48). A linear fit
of the lab's correction rewards typical frames more than fine-tuning the network does: use it to
rule designs out, not to choose one.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from sklearn.linear_model import Ridge

from napari_semfocus.scoring.scorer import FocusScorer
from napari_semfocus.training.suggest import informativeness, stratified_pick

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_suggest import POOL, candidates_of, draw_images, lab_set, typical_pick  # noqa: E402


def seed_arrays(seed: int, scorer) -> dict:
    """Candidates and held-out frames of one seed: features, scores, intervals, lab scores."""
    annotated, held_out = draw_images(POOL, seed)
    out = {}
    for side, rows in (("c", annotated), ("t", held_out)):
        table, frames = lab_set(POOL, rows)
        lab = {r.key: r.score for r in table}
        cands = candidates_of(table, frames, scorer)
        out[side + "_features"] = np.stack([c.features for c in cands])
        out[side + "_score"] = np.array([c.score for c in cands])
        out[side + "_low"] = np.array([c.low for c in cands])
        out[side + "_high"] = np.array([c.high for c in cands])
        out[side + "_lab"] = np.array([lab[c.key] for c in cands])
    return out


def proxy_rmse(d: dict, picked) -> float:
    """Held-out RMSE after a ridge fit of the lab's correction on the picked candidates."""
    idx = np.asarray(picked)
    x = np.hstack([d["c_features"], d["c_score"][:, None] / 3])
    xt = np.hstack([d["t_features"], d["t_score"][:, None] / 3])
    fit = Ridge(alpha=1.0).fit(x[idx], d["c_lab"][idx] - d["c_score"][idx])
    pred = np.clip(d["t_score"] + fit.predict(xt), 0, 10)
    return float(np.sqrt(np.mean((pred - d["t_lab"]) ** 2)))


def picks(d: dict, design: str, n: int, seed: int) -> list[int]:
    if design == "random":  # as bench_suggest draws them
        return list(np.random.default_rng(1000 + seed).permutation(len(d["c_score"]))[:n])
    info = informativeness(d["c_score"], d["c_low"], d["c_high"])  # no gate, as bench_suggest
    fn = {"typical": typical_pick, "shipped": stratified_pick}[design]
    return fn(d["c_score"], d["c_features"], info, n)


def load(seeds, cache: Path | None) -> dict:
    stored = dict(np.load(cache)) if cache and cache.exists() else {}
    data, scorer = {}, None
    for seed in seeds:
        keys = [k for k in stored if k.startswith(f"{seed}/")]
        if keys:
            data[seed] = {k.split("/", 1)[1]: stored[k] for k in keys}
            continue
        scorer = scorer or FocusScorer.default(device="cpu")
        data[seed] = seed_arrays(seed, scorer)
        print(f"seed {seed}: scored", file=sys.stderr, flush=True)
    if cache and scorer is not None:  # something new was scored: store it beside the rest
        np.savez(cache, **{f"{s}/{k}": v for s, d in data.items() for k, v in d.items()},
                 **{k: v for k, v in stored.items() if int(k.split("/")[0]) not in data})
    return data


def compare(data: dict, ns=(12, 24, 48)) -> str:
    designs = ("random", "shipped", "typical")
    res = {(g, n): [proxy_rmse(d, picks(d, g, n, s)) for s, d in sorted(data.items())]
           for g in designs for n in ns}
    lines = [f"Proxy held-out RMSE, mean over {len(data)} seeds ({min(data)}-{max(data)}); in "
             f"brackets: seeds where the design is <= random", "",
             "| design | " + " | ".join(f"N = {n}" for n in ns) + " |",
             "|---|" + "---|" * len(ns)]
    for g in designs:
        cells = []
        for n in ns:
            v, r = np.array(res[g, n]), np.array(res["random", n])
            cells.append(f"{v.mean():.3f}" + ("" if g == "random" else f" ({int((v <= r).sum())})"))
        lines.append(f"| {g} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _design(record: dict) -> str:
    """The design a logged suggested run used (logs of sessions 10-12 name no design)."""
    return "typical" if record.get("picks") in ("typical", "typical per score stratum") else "shipped"


def check(data: dict, log: Path) -> str:
    """Correlation of the proxy with the real runs of a bench_suggest log (runs that kept the
    parent left out)."""
    runs = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    runs = [r for r in runs if r["seed"] in data and not r["kept_parent"]]
    proxy = np.array([proxy_rmse(data[r["seed"]], picks(
        data[r["seed"]], _design(r) if r["arm"] == "suggested" else "random", r["n"], r["seed"]))
        for r in runs])
    real = np.array([r["after"] for r in runs])
    by = {(r["seed"], r["arm"], r["n"]): k for k, r in enumerate(runs)}
    pairs = [(by[s, "suggested", n], by[s, "random", n]) for s, a, n in by
             if a == "suggested" and (s, "random", n) in by]
    agree = sum(np.sign(proxy[a] - proxy[b]) == np.sign(real[a] - real[b]) for a, b in pairs)
    return (f"{len(runs)} real runs: Pearson r {np.corrcoef(proxy, real)[0, 1]:.2f} between proxy "
            f"and real held-out RMSE; suggested vs random on the same seed and N: the proxy "
            f"orders {agree} of {len(pairs)} pairs as the real runs do.\n")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=list(range(10, 40)))
    p.add_argument("--cache", type=Path, help="npz of the scored seeds (reused, extended)")
    p.add_argument("--check", type=Path, help="a bench_suggest log: the proxy against its runs")
    a = p.parse_args(argv)
    data = load(a.seeds, a.cache)
    print(check(data, a.check) if a.check else compare(data))


if __name__ == "__main__":
    main()
