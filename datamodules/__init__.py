"""Reading tomograms and picks, folds, sampling, augmentation, heatmap targets and the DataModule."""
