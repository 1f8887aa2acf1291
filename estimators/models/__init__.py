"""One module per model: each registers itself in estimators.model_registry when imported."""
