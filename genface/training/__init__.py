"""LightningModules and callbacks. Networks live in :mod:`genface.models`; this package owns
losses, optimisers, EMA, regularisation schedules, checkpoints and logging."""
