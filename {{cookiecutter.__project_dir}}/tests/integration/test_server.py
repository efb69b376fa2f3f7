"""Serving over HTTP: the Predictor's answers and checks, bad input a 4xx naming the problem, never a 500.

In-process through FastAPI's test client, then against a real server started with ``serve``,
where concurrent requests get the answers one-by-one requests get. Needs the serve extra
(``pip install -e ".[test,serve]"``); without it these tests are skipped.
"""

from __future__ import annotations

import hashlib
{%- if cookiecutter.task == "image" %}
import io
{%- endif %}
import json
import random
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any
{% if cookiecutter.task == "image" %}
import numpy as np
{%- elif cookiecutter.task == "tabular" %}
import pandas as pd
{%- endif %}
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
{%- if cookiecutter.task == "image" %}
from PIL import Image
{%- endif %}

from {{ cookiecutter.package_name }} import cli
from {{ cookiecutter.package_name }}.checkpoint import load_checkpoint
from {{ cookiecutter.package_name }}.config import ServeConfig
from {{ cookiecutter.package_name }}.data import REQUEST_FORMAT, request_inputs
{%- if cookiecutter.task == "tabular" %}
from {{ cookiecutter.package_name }}.data.schema import COLUMNS, FEATURES
{%- endif %}
from {{ cookiecutter.package_name }}.inference import Predictor
from {{ cookiecutter.package_name }}.task import Upload

try:
    import httpx2 as httpx
except ModuleNotFoundError:  # Python 3.10: httpx2 needs 3.11, and the test client still takes httpx
    import httpx

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient` is deprecated"),
]
pytest.importorskip("fastapi", reason="the HTTP server needs the serve extra: pip install -e '.[test,serve]'")

PACKAGE = "{{ cookiecutter.package_name }}"
# Small limits for the checks of oversized requests.
SMALL = ServeConfig(max_request_bytes=4096, max_batch=3)


# -- the task's requests: items as a client sends them, and bad ones ----------------------
{%- if cookiecutter.task == "tabular" %}
def plain(value: Any) -> Any:
    """A table's value as JSON holds it: None where missing, Python numbers rather than numpy ones."""
    if pd.isna(value):
        return None
    return value.item() if hasattr(value, "item") else value


def request_items(inputs: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as the JSON records a client sends: plain values, null where a value is missing."""
    return [{name: plain(value) for name, value in row.items()} for row in inputs.to_dict(orient="records")]


def bad_requests(item: dict[str, Any]) -> dict[str, tuple[list[Any], str]]:
    """Bad requests made from one valid record, for any schema: name -> (items, what the message names)."""
    first = FEATURES[0]
    cases = {
        "missing-column": ([{k: v for k, v in item.items() if k != first}], first),
        "not-a-record": ([["a", "list"]], "expected a record"),
        "a-list-as-a-value": ([item, {**item, first: [1, 2]}], f"item 1: column '{first}'"),
        "true-as-a-value": ([{**item, first: True}], first),
    }
    bounded = [name for name in FEATURES if COLUMNS[name].max_value is not None]
    if bounded:
        cases["out-of-range"] = ([item, {**item, bounded[0]: COLUMNS[bounded[0]].max_value * 10 + 1}], bounded[0])
    categorical = [name for name in FEATURES if COLUMNS[name].categories]
    if categorical:
        cases["unseen-category"] = ([{**item, categorical[0]: "Atlantis"}], "Atlantis")
    return cases
{%- elif cookiecutter.task == "image" %}
def png(image: np.ndarray, kind: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=kind)
    return buffer.getvalue()


def request_items(inputs) -> list[Upload]:
    """Images as the files a client uploads: lossless PNGs named as the inputs are."""
    return [Upload(str(name), png(image)) for name, image in inputs.items()]


def bad_requests(item: Upload) -> dict[str, tuple[list[Any], str]]:
    """Bad requests made from one valid upload: name -> (items, what the message names)."""
    return {
        "not-an-image": ([item, Upload("notes.png", b"these are notes")], "notes.png: not a readable image"),
        "empty-file": ([Upload("empty.png", b"")], "empty.png: empty file"),
        "truncated-image": ([Upload("half.png", item.content[: len(item.content) // 2])], "half.png"),
        "float-image": ([Upload("float.tiff", png(np.zeros((8, 8), dtype=np.float32), "TIFF"))], "image mode F"),
        "too-many-pixels": ([Upload("huge.png", png(np.zeros((8200, 8200), dtype=np.uint8)))], "huge.png: 8200x8200"),
    }
{%- elif cookiecutter.task == "text" %}
def request_items(inputs) -> list[str]:
    """Texts as a client sends them: JSON strings."""
    return list(inputs)


def bad_requests(item: str) -> dict[str, tuple[list[Any], str]]:
    """Bad requests made from one valid text: name -> (items, what the message names)."""
    return {
        "blank-text": ([item, "   "], "text 1 is empty or only white space"),
        "empty-text": ([""], "empty"),
        "a-number": ([42], "item 0: expected a text"),
        "a-record": ([{"text": item}], "expected a text"),
        "lone-surrogate": (["\ud800"], "not valid Unicode"),
    }
{%- endif %}


def post(client, items: list[Any], *, one: bool = False):
    """POST /predict with ``items`` as a batch, or with ``items[0]`` alone (``one``)."""
    if REQUEST_FORMAT == "json":
        body = items[0] if one else items
        return client.post("/predict", content=json.dumps(body), headers={"Content-Type": "application/json"})
    field = "file" if one else "files"
    sent = items[:1] if one else items
    return client.post("/predict", files=[(field, (u.name, u.content, "application/octet-stream")) for u in sent])


def expected_answers(predictor: Predictor, inputs) -> list[dict[str, Any]]:
    """What the Predictor answers for ``inputs``, in the form the server sends."""
    table = predictor.predict(inputs)
    answers = []
    for name, row in table.iterrows():
        # Uploaded files are answered with their names; JSON items by their place in the request only.
        answer = {table.index.name: name} if table.index.name and REQUEST_FORMAT == "files" else {}
        answer["label"] = row["label"]
        answer["probabilities"] = {c: row[f"probability_{c}"] for c in predictor.classes}
        answers.append(answer)
    return answers


def assert_same_answers(got: list[dict[str, Any]], expected: list[dict[str, Any]], what: str) -> None:
    assert len(got) == len(expected), f"{what}: {len(got)} answers for {len(expected)} items"
    for i, (answer, wanted) in enumerate(zip(got, expected, strict=True)):
        served, wanted_label = answer["label"], wanted["label"]
        assert served == wanted_label, f"{what}, item {i}: {served} served, {wanted_label} expected"
        for key in wanted.keys() - {"label", "confidence", "probabilities"}:  # the item's name (an image's file)
            assert answer.get(key) == wanted[key], f"{what}, item {i}: {key} {answer.get(key)!r}, not {wanted[key]!r}"
        for name, p in wanted["probabilities"].items():
            assert answer["probabilities"][name] == pytest.approx(p, abs=1e-6), f"{what}, item {i}, class {name}"
        assert answer["confidence"] == max(answer["probabilities"].values()), f"{what}, item {i}: confidence"


# -- fixtures -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def held_out(embedded_examples, split):
    """Six examples the model never trained on: their raw inputs and the items a client sends for them."""
    inputs = embedded_examples.subset(split.test[:6]).read()
    return inputs, request_items(inputs)


@contextmanager
def serving_client(predictor: Predictor, config: ServeConfig | None = None) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from {{ cookiecutter.package_name }}.inference.server import create_app

    # A server error must show as the 500 a client would get, not as an exception in the test.
    with TestClient(create_app(predictor, config), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture(scope="module")
def client(predictor):
    with serving_client(predictor) as client:
        yield client


@pytest.fixture(scope="module")
def small_client(predictor):
    with serving_client(predictor, SMALL) as client:
        yield client


# -- answers ------------------------------------------------------------------------------
def test_at_most_max_decoding_requests_are_decoded_at_once(predictor, held_out, monkeypatch):
    # Eight requests at once; each holds its decoded items for a while. Memory is bounded only if
    # the others wait for their turn, and every request is still answered.
    from {{ cookiecutter.package_name }}.inference import server

    _, items = held_out
    busy, most, guard = [0], [0], threading.Lock()

    def slow_inputs(batch):
        with guard:
            busy[0] += 1
            most[0] = max(most[0], busy[0])
        time.sleep(0.3)  # long enough that all eight overlap, unless made to wait
        with guard:
            busy[0] -= 1
        return request_inputs(batch)

    monkeypatch.setattr(server, "request_inputs", slow_inputs)
    with serving_client(predictor, ServeConfig(max_decoding=2)) as client, ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda _: post(client, items[:1]).status_code, range(8)))
    assert codes == [200] * 8, f"answers {codes}"
    assert most[0] == 2, f"{most[0]} requests were decoded at once; max_decoding is 2"


def test_health_and_metadata_describe_the_served_checkpoint(client, predictor, trained):
    assert client.get("/health").json() == {"status": "ok"}
    metadata = client.get("/metadata").json()
    assert metadata["classes"] == predictor.classes, metadata
    assert metadata["model"] == load_checkpoint(trained.checkpoint_path).model_name, metadata
    sha256 = hashlib.sha256(Path(trained.checkpoint_path).read_bytes()).hexdigest()
    assert metadata["checkpoint"]["sha256"] == sha256, "the fingerprint is not the served checkpoint's sha256"


def test_a_batch_gets_the_answers_predict_gives_for_the_same_inputs(client, predictor, held_out):
    inputs, items = held_out
    response = post(client, items)
    assert response.status_code == 200, response.text
    assert_same_answers(response.json()["predictions"], expected_answers(predictor, inputs), "batch")


def test_one_item_gets_one_answer_equal_to_its_answer_in_a_batch(client, held_out):
    _, items = held_out
    batch = post(client, items).json()["predictions"]
    for i, item in enumerate(items):
        response = post(client, [item], one=True)
        assert response.status_code == 200, response.text
        assert_same_answers([response.json()], [batch[i]], f"item {i} alone")


# -- bad input ----------------------------------------------------------------------------
def test_bad_items_get_422_with_the_message_naming_the_problem(client, held_out):
    _, items = held_out
    for case, (bad, mention) in bad_requests(items[0]).items():
        response = post(client, bad)
        assert response.status_code == 422, f"{case}: status {response.status_code}, {response.text}"
        detail = response.json()["detail"]
        assert mention in detail, f"{case}: the message does not name {mention!r}: {detail}"
        assert "\n" not in detail, f"{case}: a message of several lines: {detail!r}"
        assert "Traceback" not in detail, f"{case}: {detail!r}"


def test_the_message_is_the_one_the_predictor_gives(client, predictor, held_out):
    _, items = held_out
    for case, (bad, _) in bad_requests(items[0]).items():
        try:
            predictor.predict(request_inputs(bad))
        except ValueError as err:
            expected = str(err)
        else:
            pytest.fail(f"{case}: the Predictor accepted it")
        assert post(client, bad).json()["detail"] == expected, f"{case}: the server says something else"


@pytest.mark.parametrize(
    ("body", "headers", "status", "mention"),
    [
        (b"{not json", {"Content-Type": "application/json"}, None, None),
        (b"[]", {"Content-Type": "application/json"}, None, None),
        (b"x=1", {"Content-Type": "application/x-www-form-urlencoded"}, 415, "send "),
        (b"--b\r\nbroken", {"Content-Type": "multipart/form-data; boundary=b"}, None, None),
    ],
    ids=["unreadable-json", "empty-batch", "form-fields", "broken-multipart"],
)
def test_a_malformed_body_gets_a_4xx_with_a_message(client, body, headers, status, mention):
    response = client.post("/predict", content=body, headers=headers)
    assert 400 <= response.status_code < 500, f"status {response.status_code}: {response.text}"
    if status is not None:
        assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert detail, response.text
    assert mention is None or mention in detail, detail


def test_a_body_over_the_limit_gets_413_with_or_without_a_declared_length(small_client):
    media_type = "application/json" if REQUEST_FORMAT == "json" else "multipart/form-data; boundary=b"
    headers = {"Content-Type": media_type}
    body = b" " * (SMALL.max_request_bytes + 1)
    declared = small_client.post("/predict", content=body, headers=headers)
    streamed = small_client.post("/predict", content=iter([body[:100], body[100:]]), headers=headers)
    for name, response in (("declared length", declared), ("streamed", streamed)):
        assert response.status_code == 413, f"{name}: status {response.status_code}, {response.text}"
        assert "max-request-bytes" in response.json()["detail"], response.text


def test_a_batch_over_the_limit_gets_413_and_one_at_the_limit_an_answer(small_client, held_out):
    _, items = held_out
    at_limit = post(small_client, items[: SMALL.max_batch])
    assert at_limit.status_code == 200, at_limit.text
    over = post(small_client, items[: SMALL.max_batch + 1])
    assert over.status_code == 413, f"status {over.status_code}: {over.text}"
    assert "max-batch" in over.json()["detail"], over.text


def json_values():
    """Any JSON value; texts may hold lone surrogates (JSON can escape them, UTF-8 cannot encode them)."""
    texts = st.text(st.characters(exclude_categories=[]), max_size=20)
    scalars = st.none() | st.booleans() | st.integers() | st.floats() | texts
    return st.recursive(
        scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    )


@st.composite
def spoilt_batches(draw, items: list[Any]) -> list[Any]:
    """A batch of valid items, each perhaps spoilt: a value replaced by any JSON, or an upload's bytes cut."""
    batch = []
    for item in draw(st.lists(st.sampled_from(items), min_size=1, max_size=3)):
        if draw(st.booleans()):
            if isinstance(item, dict):
                item = {**item, draw(st.sampled_from(sorted(item))): draw(json_values())}
            elif isinstance(item, str):
                item = draw(st.text() | json_values())
            elif isinstance(item, Upload):
                name = draw(st.text(st.characters(codec="utf-8", exclude_categories=["Cc"]), max_size=12))
                cut = draw(st.integers(0, len(item.content)))
                item = Upload(name, item.content[:cut] + draw(st.binary(max_size=8)))
        batch.append(item)
    return batch


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_any_request_gets_an_answer_or_a_4xx_never_a_500(client, held_out, data):
    _, items = held_out
    if REQUEST_FORMAT == "json" and data.draw(st.booleans()):
        body = data.draw(json_values())  # any JSON at all
        response = client.post("/predict", content=json.dumps(body), headers={"Content-Type": "application/json"})
    else:
        response = post(client, data.draw(spoilt_batches(items)))
    assert response.status_code == 200 or 400 <= response.status_code < 500, (
        f"status {response.status_code} for a client's mistake: {response.text[:500]}"
    )
    if response.status_code != 200:
        detail = response.json()["detail"]
        assert isinstance(detail, str), detail
        assert "Traceback" not in detail, detail


# -- the command ---------------------------------------------------------------------------
def test_serve_refuses_a_port_that_is_taken_with_exit_status_2(trained, assert_one_line_error):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        args = ["serve", "--checkpoint", str(trained.checkpoint_path), "--port", port]
        assert cli.main(args) == 2, "serve started on a port another socket holds"
    assert_one_line_error("cannot listen on", port)


def answers_health(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=5).status_code == 200
    except httpx.TransportError:  # not listening yet
        return False


@contextmanager
def running_server(checkpoint: Path, log: Path) -> Iterator[str]:
    """``serve`` in its own process on a free port; yields its URL once /health answers; always stops it."""
    command = [sys.executable, "-m", PACKAGE, "serve", "--checkpoint", str(checkpoint), "--port", "0"]
    with log.open("w") as out:  # a file, not a pipe: a full pipe would block the server's logging
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        url, deadline = None, time.monotonic() + 120
        while url is None or not answers_health(url):
            if process.poll() is not None:
                pytest.fail(f"serve exited with status {process.returncode}:\n{log.read_text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"serve did not answer /health within 120 s:\n{log.read_text()}")
            found = re.search(r"^serving .* on (http://\S+)$", log.read_text(), re.MULTILINE)
            url = found.group(1) if found else None
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_a_started_server_answers_concurrent_requests_as_one_by_one_and_stops_cleanly(trained, held_out, tmp_path):
    _, items = held_out
    log = tmp_path / "serve.log"
    with running_server(trained.checkpoint_path, log) as url, httpx.Client(base_url=url, timeout=60) as http:
        one_by_one = [post(http, [item], one=True).json() for item in items]
        batch = post(http, items).json()["predictions"]
        # Every item four times, in a shuffled order, as single requests and batches of two from eight threads.
        order = [i for i in range(len(items)) for _ in range(4)]
        random.Random(0).shuffle(order)

        def request(i: int):
            return post(http, [items[i], items[(i + 1) % len(items)]] if i % 2 else [items[i]], one=not i % 2)

        with ThreadPoolExecutor(max_workers=8) as pool:
            responses = list(pool.map(request, order))
        bad, mention = next(iter(bad_requests(items[0]).values()))
        refused = post(http, bad)
    for i, response in zip(order, responses, strict=True):
        assert response.status_code == 200, f"item {i}: {response.status_code} {response.text}"
        got = [response.json()] if not i % 2 else response.json()["predictions"]
        expected = [one_by_one[i]] if not i % 2 else [batch[i], batch[(i + 1) % len(items)]]
        assert_same_answers(got, expected, f"concurrent request for item {i}")
    assert refused.status_code == 422, refused.text
    assert mention in refused.json()["detail"], refused.text
    text = log.read_text()
    assert "Traceback" not in text, f"the server logged an error:\n{text}"
    assert "Finished server process" in text, f"serve did not shut down cleanly on SIGTERM:\n{text}"
