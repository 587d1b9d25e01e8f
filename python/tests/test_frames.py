"""DataFrames, SQL and parquet from Python: Arrow from Rust, without JSON or pickle."""

import random

import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import hashstash_rs
from hashstash_rs import HashStash, SqlError


@pytest.fixture
def animals():
    stash = HashStash(engine="memory", dbname="assembling_dfs", clear=True)
    rng = random.Random(7)
    for n in range(100):
        cat_or_dog = rng.choice(["cat", "dog"])
        goodness = rng.choice(["good", "bad"])
        stash[f"Animal {n + 1}"] = {
            "name": cat_or_dog,
            "goodness": goodness,
            "etc": {"age": rng.randint(1, 10),
                    "goes_to": {"heaven": cat_or_dog == "dog" or goodness == "good"}},
        }
    return stash


def test_df_is_polars_with_flattened_columns(animals):
    df = animals.df
    assert isinstance(df, pl.DataFrame)
    assert df.shape == (100, 5)
    assert df.columns == ["_key", "name", "goodness", "etc.age", "etc.goes_to.heaven"]
    row = df.filter(pl.col("_key") == "Animal 1").row(0, named=True)
    assert row["name"] == animals["Animal 1"]["name"]
    assert row["etc.age"] == animals["Animal 1"]["etc"]["age"]
    heaven = df["etc.goes_to.heaven"].to_list()
    assert all(h == (n == "dog" or g == "good")
               for h, n, g in zip(heaven, df["name"], df["goodness"]))


def test_df_pandas_indexed_by_key(animals):
    pdf = animals.df(pandas=True)
    assert isinstance(pdf, pd.DataFrame)
    assert pdf.index.name == "_key" and len(pdf) == 100
    assert pdf.loc["Animal 2", "name"] == animals["Animal 2"]["name"]
    assert animals.df.to_pandas().shape == (100, 5)
    assert len(animals.ld) == 100 and animals.ld[0].keys() >= {"_key", "name"}


def test_arrow_columns_come_without_copy_or_json(animals):
    table = animals.to_arrow()
    assert isinstance(table, pa.Table)
    assert table.schema.field("etc.age").type == pa.int64()
    assert table.schema.field("etc.goes_to.heaven").type == pa.bool_()


def test_sql_over_a_stash(animals):
    out = animals.sql("SELECT name, count(*) AS n FROM stash GROUP BY name ORDER BY name")
    assert isinstance(out, pl.DataFrame)
    expected = animals.df.group_by("name").len().sort("name")
    assert out["n"].to_list() == expected["len"].to_list()
    table = animals.sql("SELECT _key FROM stash WHERE \"etc.age\" > 5", arrow=True)
    assert isinstance(table, pa.Table)
    assert table.num_rows == animals.df.filter(pl.col("etc.age") > 5).height
    empty = animals.sql("SELECT _key FROM stash WHERE false", arrow=True)
    assert empty.num_rows == 0 and empty.schema.names == ["_key"]
    with pytest.raises(SqlError):
        animals.sql("SELECT nope FROM stash")


def test_sql_joins_stashes_and_parquet(animals, tmp_path):
    owners = HashStash(engine="memory", dbname="owners", clear=True)
    owners.update({f"Animal {n}": {"owner": f"person {n % 3}"} for n in range(1, 101)})
    path = tmp_path / "animals.parquet"
    assert animals.to_parquet(path) == 100
    assert pq.read_table(path).num_rows == 100  # an independent reader
    joined = hashstash_rs.sql(
        "SELECT o.owner, count(*) AS n FROM owners o JOIN snap s USING (_key) "
        "GROUP BY o.owner ORDER BY o.owner", owners=owners, snap=path)
    assert joined["n"].sum() == 100 and joined.height == 3
    again = HashStash(engine="memory", dbname="reloaded", clear=True)
    assert again.load_parquet(path) == 100
    assert again["Animal 5"]["name"] == animals["Animal 5"]["name"]


def test_append_mode_history_as_a_frame():
    stash = HashStash("readme_append_mode", engine="pairtree", append_mode=True, clear=True)
    key = {"name": "cat"}
    stash[key] = {"goodness": "good"}
    stash[key] = {"goodness": "bad"}
    latest = stash.df
    assert latest.height == 1 and latest["goodness"].to_list() == ["bad"]
    history = stash.assemble_df(with_metadata=True)
    assert history["_version"].to_list() == [1, 2]
    assert history["goodness"].to_list() == ["good", "bad"]
    versions = stash.sql("SELECT count(*) AS n FROM stash_versions")
    assert versions["n"].item() == 2


def test_dataframes_and_numpy_as_values():
    import numpy as np

    stash = HashStash("frames_as_values", clear=True)
    pdf = pd.DataFrame({"name": ["cat", "dog"], "goodness": ["good", "bad"]})
    stash["pandas"] = pdf
    back = stash["pandas"]
    assert isinstance(back, pd.DataFrame) and back.equals(pdf)
    pldf = pl.DataFrame({"x": [1, 2, 3], "y": ["a", "b", None]})
    stash["polars"] = pldf
    assert stash["polars"].equals(pldf)
    arr = np.arange(12, dtype=np.float32).reshape(3, 4)
    stash["numpy"] = arr
    back = stash["numpy"]
    assert back.dtype == np.float32 and back.shape == (3, 4) and (back == arr).all()
    stash["scalars"] = {"i": np.int64(3), "f": np.float64(0.5), "b": np.bool_(True)}
    assert stash["scalars"] == {"i": 3, "f": 0.5, "b": True}
    # A DataFrame as a key, as in the original's README.
    stash[pdf] = "cat"
    assert stash[pd.DataFrame({"name": ["cat", "dog"], "goodness": ["good", "bad"]})] == "cat"


def test_profile_times_this_stash():
    stash = HashStash("profiled", clear=True)
    row = stash.profile(items=200).row(0, named=True)
    assert row["engine"] == "lmdb" and row["items"] == 200
    assert row["set_per_s"] > 0 and row["get_per_s"] > 0 and row["update_per_s"] > 0
    assert len(stash) == 0  # measured in a temporary stash
