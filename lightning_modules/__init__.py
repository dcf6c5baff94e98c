"""Training logic: losses, mixup, EMA, optimisation, validation with the official metric."""
