"""Model selection: k-fold cross-validation, per-code statistics, registry, report."""
