"""Folds, sampling, augmentation, heatmap targets and the DataModule."""
