"""compile / fit / evaluate / train_on_batch / test_on_batch for Model (a mixin)."""


class TrainingMixin:
    """Placeholder: the training methods are written in this file."""
