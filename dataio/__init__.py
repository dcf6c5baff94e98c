"""Data formats shared by every stage, below all of them: the copick / Kaggle layout, the picks-table schema,
tomogram and pick readers, pick and zarr writers, and atomic writes. datamodules/, postprocess/, simulation/
and the scripts import from here; nothing here imports from them."""
