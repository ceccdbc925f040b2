"""The input rules themselves: what PostgreSQL and the dialling client would choke on."""

from __future__ import annotations

import pytest
from pydantic_core import PydanticCustomError

from app.ids import new_id
from app.validation import (
    InvalidJson,
    cursor_check,
    http_url_problem,
    json_problems,
    parse_json,
    storable_text,
    text_problem,
)


@pytest.mark.parametrize("value", ["a\x00b", "\ud800", "x\udfff"])
def test_unstorable_text_is_named(value: str) -> None:
    assert text_problem(value)


@pytest.mark.parametrize("value", ["", "plain", "émoji 🎬", "\u2028", "\ufffd"])
def test_storable_text_passes(value: str) -> None:
    assert text_problem(value) is None


def test_storable_text_replaces_what_cannot_be_stored() -> None:
    assert storable_text("a\x00b\ud800") == "a\ufffdb\ufffd"


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e999", "-1e400"])
def test_non_finite_numbers_are_found_where_they_are(token: str) -> None:
    tree = parse_json(f'{{"metadata": {{"a": [1, {token}]}}}}'.encode())
    [problem] = json_problems(tree)
    assert (problem.loc, problem.code) == (("body", "metadata", "a", 1), "non_finite_number")


def test_keys_and_values_are_both_checked() -> None:
    problems = json_problems(parse_json(b'{"k\\u0000": 1, "v": "\\u0000", "ok": 1.5}'))
    assert {(p.loc, p.code) for p in problems} == {
        (("body",), "invalid_characters"),
        (("body", "v"), "invalid_characters"),
    }


def test_a_deep_tree_is_walked_without_recursion() -> None:
    deep: object = "\x00"
    for _ in range(5000):
        deep = [deep]
    [problem] = json_problems(deep)
    assert len(problem.loc) == 5001


@pytest.mark.parametrize("raw", [b"{", b"\xff", b"[" * 50_000, b"9" * 5000])
def test_what_json_cannot_decode_is_invalid_json(raw: bytes) -> None:
    with pytest.raises(InvalidJson):
        parse_json(raw)


@pytest.mark.parametrize(
    "url",
    [
        "https://0177.0.0.1/",
        "https://１２７.0.0.1/",
        "https://127.0.0.1/\n",
        "https://127.000.000.001/",
        "https://xn--/",
        "https://[::1/",
        "ftp://example.com/x",
        "https:///x",
        "https://example.com:99999/",
        "https://exa\\mple.com/",
        "motion.mp4",
    ],
)
def test_urls_the_dialler_cannot_use_are_refused(url: str) -> None:
    assert http_url_problem(url)


@pytest.mark.parametrize(
    "url", ["https://example.com/a.png?x=1", "http://127.0.0.1:8001/v", "https://bücher.de/"]
)
def test_ordinary_urls_pass(url: str) -> None:
    assert http_url_problem(url) is None


def test_a_cursor_must_be_an_id_of_its_kind() -> None:
    check = cursor_check("job")
    job = new_id("job")
    assert check(None) is None
    assert check(job) == job
    for bad in ("zzz", new_id("we"), job + "x"):
        with pytest.raises(PydanticCustomError) as caught:
            check(bad)
        assert caught.value.type == "mgw_invalid_cursor"
