"""Fingerprinting: safe image loading, native-resolution crops, spectral and learned fingerprints, the zoo."""
