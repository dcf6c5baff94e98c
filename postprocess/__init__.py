"""Everything after the probabilities: heatmap NMS, class suppression, thresholds, the metric, pictures."""
