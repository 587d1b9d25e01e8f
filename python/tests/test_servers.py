"""Server engines from Python: Redis, a MongoDB wire-compatible server and S3-compatible
object storage, as ``scripts/services.sh`` starts them (the test command requires them:
``HASHSTASH_REQUIRE_SERVERS=1`` turns a missing server into a failure, not a skip)."""

import os
import uuid

import pytest

import helpers
from hashstash_rs import EngineError, HashStash

SERVERS = {"redis": "HASHSTASH_REDIS_URL", "mongo": "HASHSTASH_MONGO_URL",
           "objectstore": "HASHSTASH_OBJECTSTORE_URL"}


@pytest.fixture(params=sorted(SERVERS))
def server_stash(request):
    url = os.environ.get(SERVERS[request.param])
    if not url:
        if os.environ.get("HASHSTASH_REQUIRE_SERVERS"):
            pytest.fail(f"{SERVERS[request.param]} is not set: start scripts/services.sh")
        pytest.skip(f"no {request.param} server")
    return HashStash(f"py-{uuid.uuid4().hex}", engine=request.param, url=url, clear=True)


def test_dictionary_on_a_server(server_stash):
    stash = server_stash
    stash[{"name": "cat"}] = {"goodness": "good", "vals": [1, 2]}
    stash.update({f"key{i}": i for i in range(100)})
    assert stash[{"name": "cat"}] == {"goodness": "good", "vals": [1, 2]}
    assert len(stash) == 101 and "key7" in stash
    assert stash.sql("SELECT count(*) AS n FROM stash")["n"].item() == 101
    assert stash.pop("key7") == 7 and "key7" not in stash
    stash.clear()
    assert len(stash) == 0


def test_memo_on_a_server(server_stash, tmp_path, monkeypatch):
    calls = tmp_path / "calls"
    calls.write_text("")
    monkeypatch.setenv(helpers.CALLS_FILE_ENV, str(calls))
    mapped = server_stash.map(helpers.slow_square, [1, 2, 1, 2], num_proc=2)
    assert [r["square"] for r in mapped.results] == [1, 4, 1, 4]
    assert sorted(calls.read_text().split("\n")[:-1]) == ["square 1", "square 2"]


def test_a_dead_server_is_a_typed_error():
    with pytest.raises(EngineError):
        HashStash("dead", engine="redis", url="redis://127.0.0.1:1/0", timeout_ms=300)["k"]
