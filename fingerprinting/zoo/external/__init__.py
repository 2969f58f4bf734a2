"""The external corpus: generators trained by other people (run with ncnn on CPU) and camera photographs, in the zoo's two tables."""
from fingerprinting.zoo.external.build import ExternalSummary, build_external
from fingerprinting.zoo.external.catalogue import FAMILIES, GENERATORS, ExternalGenerator
from fingerprinting.zoo.external.packages import INSTALL_HINT, ExternalPackagesMissing
from fingerprinting.zoo.external.photographs import camera_photos

__all__ = ["FAMILIES", "GENERATORS", "INSTALL_HINT", "ExternalGenerator", "ExternalPackagesMissing", "ExternalSummary",
           "build_external", "camera_photos"]
