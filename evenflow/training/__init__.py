"""Training on Dask: device and cluster, XGBoost and LightGBM, checkpoints, cross-fitting."""
