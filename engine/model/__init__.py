"""Labels, splits, the LightGBM ranker, baselines, metrics and off-policy estimates."""
