"""Everything after the logits: stitching, TTA, heatmap NMS, thresholds, metric. No Lightning here."""
