"""Frames worth annotating (issue 24, item 4): fine-tuning on N suggested frames vs N random
frames of the harsher lab, held-out RMSE (docs/benchmarks/suggest.md).

Per seed, ``bench_finetune.draw_images`` draws 24 pool images whose 6 blurred copies are the
*candidates* (144 frames the lab could annotate; the lab's scores stay hidden until picked) and 24
others held out (144 frames). The shipped model scores the candidates once
(:func:`~napari_semfocus.training.suggest.score_candidates`) and
:func:`~napari_semfocus.training.suggest.suggest` picks N (no gate: threshold 7); random picks
are N frames drawn uniformly (seeded). Each pick is annotated with the lab's scores and the
shipped model is fine-tuned on it exactly as ``semfocus train --annotations`` does (defaults,
its own validation split, the parent kept unless the last epoch beats it); the held-out frames
are scored as users score them. Random 2N runs beside (random 96 for N = 48) answer whether
suggested-N reaches random-2N. Each run is appended to ``--log`` (JSON lines) as it ends;
``--report LOG`` writes the table from a log (also a partial one).

    python benchmarks/bench_suggest.py --seeds 0 1 2 3 4 --n 12 24 48 --log suggest.jsonl
    python benchmarks/bench_suggest.py --report suggest.jsonl --output docs/benchmarks/suggest-table.md
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from napari_semfocus.jobs.inputs import ImageInput
from napari_semfocus.progress import run_to_end
from napari_semfocus.scoring.checkpoint import load_checkpoint, model_file
from napari_semfocus.scoring.devices import cpu_model_name
from napari_semfocus.scoring.scorer import FocusScorer
from napari_semfocus.training.data.annotations import AnnotationTable
from napari_semfocus.training.finetune import finetune, finetune_config
from napari_semfocus.training.loop import evaluate_rmse
from napari_semfocus.training.suggest import informativeness, pick, score_candidates, suggest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_finetune import POOL, draw_images, lab_set  # noqa: E402


def candidates_of(table, frames, scorer):
    """Every annotated frame of the lab as a candidate (one stack per image), scored once."""
    by_image: dict = {}
    for r in table:
        by_image.setdefault(r.layer, []).append(r)
    inputs = [ImageInput(name, np.stack([frames[r.key][0] for r in rows]),
                         rows[0].magnification, from_layer=False)
              for name, rows in by_image.items()]
    return run_to_end(score_candidates(scorer, inputs))


TYPICAL_NEIGHBOURS = 10


def typicality(feats: np.ndarray, k: int = TYPICAL_NEIGHBOURS) -> tuple[np.ndarray, float]:
    """(1 / mean distance to the k nearest other rows, median nearest-neighbour distance)."""
    dist = np.linalg.norm(feats[:, None] - feats[None], axis=2)
    np.fill_diagonal(dist, np.inf)
    near = np.sort(dist, axis=1)
    d_nn = float(np.median(near[:, 0]))
    return 1.0 / np.maximum(near[:, :k].mean(axis=1), 1e-12), d_nn if d_nn > 0 else 1.0


def typical_pick(scores, feats, info, n) -> list[int]:
    """The design tried in session 13 (for comparison; docs/benchmarks/suggest.md): per score
    stratum the frame maximising typicality x sqrt(informativeness) x min(1, distance to the
    nearest frame picked / median nearest-neighbour distance)."""
    typ, d_nn = typicality(feats)
    weight = typ * np.sqrt(info)
    strata = sorted(np.array_split(np.argsort(scores, kind="stable"), n),
                    key=lambda rows: -float(weight[rows].max()))
    chosen, nearest = [], np.full(len(info), np.inf)
    for rows in strata:
        gain = weight[rows] * np.minimum(1.0, nearest[rows] / d_nn)
        if gain.max() <= 0:
            continue
        best = int(rows[int(np.argmax(gain))])
        nearest = np.minimum(nearest, np.linalg.norm(feats - feats[best], axis=1))
        chosen.append(best)
    return pick(feats, info, n, start=chosen)


PICKS = {"shipped": "stratified by score", "typical": "typical"}  # what a log records


def suggested_keys(cands, n, design: str) -> set:
    """The keys of the N frames a design picks: ``shipped`` (``semfocus suggest``'s own) or
    ``typical`` (:func:`typical_pick`)."""
    if design == "shipped":
        return {s.candidate.key for s in suggest(cands, n)}
    scores = np.array([c.score for c in cands])
    info = informativeness(scores, [c.low for c in cands], [c.high for c in cands])
    rows = typical_pick(scores, np.stack([c.features for c in cands]), info, n)
    return {cands[i].key for i in rows}


def fine_tune_on(table, frames, keys, seed, test_set) -> dict:
    """Fine-tune the shipped model on the frames ``keys`` of the lab's table; held-out RMSE."""
    picked = AnnotationTable(r for r in table if r.key in keys)
    t0 = time.perf_counter()
    result = run_to_end(finetune(picked, finetune_config(seed=seed, device="cpu"), frames=frames))
    wall = time.perf_counter() - t0
    after = evaluate_rmse(result.model, test_set, torch.device("cpu"), None)
    labels = [r.score for r in picked]
    return {"after": after, "kept_parent": result.kept_parent, "wall_s": wall,
            "frames": len(picked), "images": len(picked.images()),
            "label_mean": float(np.mean(labels)), "label_std": float(np.std(labels))}


def run_seed(seed: int, ns, log_path: Path, arms=("suggested", "random"),
             design: str = "shipped") -> None:
    annotated, held_out = draw_images(POOL, seed)
    table, frames = lab_set(POOL, annotated)
    test_table, test_frames = lab_set(POOL, held_out)
    test_set = test_table.labelled_set(test_frames)
    parent, _ = load_checkpoint(model_file("default"))
    before = evaluate_rmse(parent, test_set, torch.device("cpu"), None)
    t0 = time.perf_counter()
    cands = candidates_of(table, frames, FocusScorer.default(device="cpu"))
    score_s = time.perf_counter() - t0
    keys = [c.key for c in cands]
    rng = np.random.default_rng(1000 + seed)
    order = rng.permutation(len(keys))  # random N: the first N of one permutation (nested)
    # N by N, each with random N and random 2N beside it: a seed cut short still compares
    plan = []
    for n in sorted(ns):
        plan += [(arm, k) for arm, k in (("suggested", n), ("random", n), ("random", 2 * n))
                 if (arm, k) not in plan and arm in arms]
    for arm, n in plan:
        if arm == "suggested":
            chosen = suggested_keys(cands, n, design)
        else:
            chosen = {keys[i] for i in order[:n]}
        rec = {"seed": seed, "arm": arm, "n": n, "before": before, "score_candidates_s": score_s,
               "picks": PICKS[design] if arm == "suggested" else "random",
               **fine_tune_on(table, frames, chosen, seed, test_set)}
        print(json.dumps(rec), flush=True)
        with open(log_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(rec) + "\n")


def report(log_path: Path) -> str:
    recs = [json.loads(line) for line in Path(log_path).read_text().splitlines() if line.strip()]
    seeds = sorted({r["seed"] for r in recs})
    by = {}
    for r in recs:
        by.setdefault((r["arm"], r["n"]), []).append(r)
    ns = sorted({n for a, n in by if a == "suggested"})
    lines = ["| N | suggested: held-out RMSE (mean ± sd) | random: held-out RMSE | random 2N | "
             "suggested <= random | suggested-N <= random-2N | seeds |", "|---|---|---|---|---|---|---|"]

    def cell(arm, n, seeds_of=None):
        """RMSEs of ``arm`` at ``n`` in seed order, only the seeds that ran suggested
        ``seeds_of`` (means over the same seeds)."""
        keep = {r["seed"] for r in by.get(("suggested", seeds_of), [])} if seeds_of else None
        v = [r["after"] for r in sorted(by.get((arm, n), []), key=lambda r: r["seed"])
             if keep is None or r["seed"] in keep]
        return (f"{np.mean(v):.3f} ± {np.std(v):.3f}" if v else "—"), v

    for n in ns:
        s, sv = cell("suggested", n)
        r, rv = cell("random", n, n)
        r2, r2v = cell("random", 2 * n, n)
        k = min(len(sv), len(rv))
        k2 = min(len(sv), len(r2v))
        lines.append(f"| {n} | {s} | {r} | {r2} | "
                     f"{sum(a <= b for a, b in zip(sv[:k], rv[:k], strict=True)) if k else '—'} of {k} | "
                     f"{sum(a <= b for a, b in zip(sv[:k2], r2v[:k2], strict=True)) if k2 else '—'} of {k2} | {len(sv)} |")
    before = np.mean([r["before"] for r in recs])
    kept = {arm: sum(r["kept_parent"] for r in recs if r["arm"] == arm) for arm in ("suggested", "random")}
    walls = [r["wall_s"] for r in recs]
    text = ("\n".join(lines) + f"\n\nParent (shipped model) held-out RMSE {before:.3f} (mean over "
            f"seeds {', '.join(map(str, seeds))}). Parent kept (no fine-tuned model beat it on its "
            f"own validation split): suggested {kept['suggested']}, random {kept['random']} runs. "
            f"One fine-tuning took {min(walls):.0f}-{max(walls):.0f} s (median "
            f"{np.median(walls):.0f} s) on {cpu_model_name()} (CPU, the runs' own thread count: "
            f"OMP_NUM_THREADS as run), shared with other work; scoring the 144 candidates "
            f"{np.median([r['score_candidates_s'] for r in recs]):.0f} s.\n")
    per = ["", "| seed | arm | N | held-out RMSE | parent kept | frames (images) | lab score mean ± sd |",
           "|---|---|---|---|---|---|---|"]
    for r in sorted(recs, key=lambda r: (r["seed"], r["arm"], r["n"])):
        per.append(f"| {r['seed']} | {r['arm']} | {r['n']} | {r['after']:.3f} | "
                   f"{'yes' if r['kept_parent'] else 'no'} | {r['frames']} ({r['images']}) | "
                   f"{r['label_mean']:.2f} ± {r['label_std']:.2f} |")
    return text + "\n".join(per) + "\n"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--n", type=int, nargs="+", default=[12, 24, 48])
    p.add_argument("--log", type=Path, default=Path("bench-suggest.jsonl"))
    p.add_argument("--report", type=Path, help="only write the table of this log")
    p.add_argument("--output", type=Path)
    p.add_argument("--arms", nargs="+", default=["suggested", "random"],
                   choices=["suggested", "random"], help="run only these arms")
    p.add_argument("--design", choices=["shipped", "typical"], default="shipped",
                   help="the suggested arm's picks: semfocus suggest's (shipped) or the "
                        "typical frames tried in session 13, for comparison")
    a = p.parse_args(argv)
    if a.report is None:
        for seed in a.seeds:
            run_seed(seed, a.n, a.log, tuple(a.arms), a.design)
    text = report(a.report or a.log)
    print(text)
    if a.output:
        a.output.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
