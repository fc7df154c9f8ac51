"""MLflow as the model store: the run layout (artifact paths, tag names) and the store facade."""
