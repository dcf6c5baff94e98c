"""Data formats shared by every stage, below all of them: the copick / Kaggle layout, the picks-table schema,
tomogram (MRC, zarr) and pick readers, pick and zarr writers, folds and particle sets, safe checkpoint files.
How the tools run (errors, locks, launches, atomic outputs) is ``runtime/``, below this."""
