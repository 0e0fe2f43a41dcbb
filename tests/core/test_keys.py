import pyarrow as pa

from crmbridge.core.keys import chunks, waves


def _batch(keys: list[object]) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict({"k": keys, "i": list(range(len(keys)))})


def test_unique_keys_are_one_wave() -> None:
    batch = _batch(["a", "b", "c"])
    assert waves(batch, ["k"]) == [batch]


def test_repeated_keys_are_split_into_waves_in_source_order() -> None:
    parts = waves(_batch(["a", "b", "a", "c", "a", "b"]), ["k"])
    assert [p.column("i").to_pylist() for p in parts] == [[0, 1, 3], [2, 5], [4]]
    for part in parts:
        assert len(set(part.column("k").to_pylist())) == part.num_rows


def test_null_keys_stay_in_the_first_wave() -> None:
    parts = waves(_batch([None, "a", None, "a"]), ["k"])
    assert [p.column("i").to_pylist() for p in parts] == [[0, 1, 2], [3]]


def test_compound_keys() -> None:
    batch = pa.RecordBatch.from_pydict({"a": [1, 1, 1], "b": ["x", "y", "x"]})
    assert [p.num_rows for p in waves(batch, ["a", "b"])] == [2, 1]


def test_chunks_respect_the_size() -> None:
    batch = _batch(list(range(10)))
    assert [c.num_rows for c in chunks(batch, 4)] == [4, 4, 2]
    assert chunks(batch, None) == [batch]


def test_key_strings_join_parts_and_fold_text() -> None:
    from crmbridge.core.keys import KEY_SEPARATOR, key_strings

    batch = pa.RecordBatch.from_pydict({"a": [" Ann@X.com ", None], "b": [1, 2]})
    assert key_strings(batch, ["a"], fold=True).to_pylist() == ["ann@x.com", None]
    assert key_strings(batch, ["a", "b"]).to_pylist() == [f" Ann@X.com {KEY_SEPARATOR}1", None]
