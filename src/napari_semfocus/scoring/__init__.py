"""From grey frames to focus scores: preparation, the model and its files, devices, the one
scorer (whole images and focus maps), aggregation of tile scores, classical measures."""
