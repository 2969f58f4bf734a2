"""The generator zoo: a generator space, generator families, brief training, and the labelled corpus build."""
from fingerprinting.zoo.build import ZooOptionsMismatch, ZooSummary, build_zoo
from fingerprinting.zoo.tables import Zoo, load_zoo

__all__ = ["Zoo", "ZooOptionsMismatch", "ZooSummary", "build_zoo", "load_zoo"]
