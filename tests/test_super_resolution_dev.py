"""bench.super_resolution_dev on data the test makes: the held-out family never trains."""
from __future__ import annotations

import numpy as np
import pandas as pd

from bench import super_resolution_dev as dev
from bench.outside_part import VIEWS


def test_auc_table_holds_the_family_out_of_every_recipe_that_says_so():
    rng = np.random.default_rng(0)
    rows, features = [], []
    # reals near 0; fakes shifted along an axis, SPAN's the zoo family's: a detector finds only what it trained on
    for family, axis in (("", None), ("realcugan", 0), ("span", 1), (dev.FAMILY, 1)):
        for fold in (0, 1):
            for view in VIEWS:
                x = rng.normal(0, 1, (40, 3))
                if axis is not None:
                    x[:, axis] += 4
                features.append(x)
                rows += [{"is_fake": bool(family), "family": family or None, "fold": fold, "view": view}] * 40
    table = dev.auc_table(pd.DataFrame(rows), np.concatenate(features), boosting_rounds=20)
    assert len(table) == 6
    auc = table.set_index(["held-out family", "trained on"])["clean"]
    assert auc[("realcugan", "other external family (leave-one-family-out)")] < 0.75
    assert auc[("realcugan", "zoo super-resolution family only")] < 0.75
    assert auc[("span", "other external family (leave-one-family-out)")] < 0.75
    assert auc[("span", "zoo super-resolution family only")] > 0.95
