"""Making and judging focus models: labelled data (:mod:`.data`), the training loop, fine-tuning
on expert annotations, evaluation and the architecture comparison."""
