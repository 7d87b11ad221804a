"""Files in and out, no model: image files and their SEM metadata and data bar, pixel arrays as
grey frames, manifests, score tables and safe (atomic) writes."""
