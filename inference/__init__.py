"""Everything between a trained run folder and class probabilities: run folders and their weights (read
safely), sliding window, TTA, the ensemble's average, out-of-fold predictions and their thresholds. Plain
torch: no Lightning, no training code, so predicting needs neither."""
