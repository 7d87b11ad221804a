"""Labelled data: the pool of real SEM images, procedural scenes, degradations with known blur,
the generated dataset, labelled sets and expert annotations."""
