"""Copy a trained checkpoint into the package as the shipped default model (float16 weights),
with the evaluation report's figures in its metadata.

    python scripts/ship_model.py runs/v3/best.safetensors --report docs/eval/resnet18-mag-v3.json

The file is ``src/napari_semfocus/models/<DEFAULT_MODEL_NAME>`` (``scoring/checkpoint.py``); change
that name for a new version.
"""

from __future__ import annotations

import argparse
import json

from napari_semfocus.scoring.checkpoint import default_model_path, load_checkpoint, save_checkpoint


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("checkpoint")
    p.add_argument("--report", help="JSON written by `semfocus evaluate --output`")
    args = p.parse_args(argv)
    model, meta = load_checkpoint(args.checkpoint)
    meta = {k: v for k, v in meta.items() if k not in ("format", "format_version", "architecture",
                                                      "input", "weights_dtype")}
    meta["model_version"] = default_model_path().stem  # DEFAULT_MODEL_NAME names the version
    if args.report:
        with open(args.report, encoding="utf-8") as fh:
            report = json.load(fh)
        meta["metrics"] = {"validation": report["methods"]["model"], "manifest": report["manifest"]}
    out = save_checkpoint(model, default_model_path(), meta, half=True)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
