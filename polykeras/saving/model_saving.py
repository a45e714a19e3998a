"""to_json / to_yaml / save / save_weights / load_weights for Model (a mixin)."""


class SavingMixin:
    """Placeholder: the saving methods are written in this file."""
