"""Reference implementations: the NumPy oracle (`numpy_ref`) and its PyTorch mirror."""
