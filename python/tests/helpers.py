"""Functions the tests stash: importable by name, so that worker processes find them."""

import os
import time

CALLS_FILE_ENV = "HASHSTASH_TEST_CALLS"


def count_call(tag: str) -> None:
    """Appends one line per computation to a file shared by every process."""
    with open(os.environ[CALLS_FILE_ENV], "a") as f:
        f.write(f"{tag}\n")


def slow_square(x, pause=0.2):
    count_call(f"square {x}")
    time.sleep(pause)
    return {"x": x, "square": x * x, "pid": os.getpid()}


def describe(name, goodnesses=("good",)):
    count_call(f"describe {name}")
    return {"name": name, "goodness": goodnesses[0]}
