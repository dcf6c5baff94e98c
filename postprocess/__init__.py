"""Everything after the logits: stitching, TTA, heatmap NMS, thresholds, metric, writers. No Lightning here."""
