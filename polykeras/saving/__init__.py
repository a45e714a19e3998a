"""Class registry, config/JSON/YAML and HDF5 in Keras' legacy layout."""
