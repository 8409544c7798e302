"""Every JSON repair, each with the raw bytes a firmware sends."""

from __future__ import annotations

import json
import math

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.collectors.asic import repair
from edge_agent.collectors.asic.client import MinerMalformed, decode

from .helpers import fixture_bytes


def test_well_formed_reply_takes_the_fast_path() -> None:
    assert repair.loads(b'{"a":1}') == {"a": 1}


def test_trailing_nul_terminator() -> None:
    assert repair.loads(b'{"STATUS":[{"STATUS":"S"}],"id":1}\x00') == {"STATUS": [{"STATUS": "S"}], "id": 1}


def test_anything_after_the_nul_is_ignored() -> None:
    assert repair.loads(b'{"a":1}\x00\x00garbage') == {"a": 1}


def test_bmminer_missing_comma_between_stats_objects() -> None:
    raw = b'{"STATS":[{"BMMiner":"2.0.0","Type":"Antminer S9"}{"STATS":0,"GHS 5s":"13628.52"}],"id":1}\x00'
    assert repair.loads(raw)["STATS"] == [
        {"BMMiner": "2.0.0", "Type": "Antminer S9"},
        {"STATS": 0, "GHS 5s": "13628.52"},
    ]


def test_bmminer_missing_comma_with_whitespace() -> None:
    assert repair.loads(b'{"S":[{"a":1} \n {"b":2}]}') == {"S": [{"a": 1}, {"b": 2}]}


def test_a_brace_pair_inside_a_string_is_left_alone() -> None:
    # The repair must not touch "}{" inside a value, only between objects.
    raw = b'{"S":[{"url":"stratum://x/}{y"}{"b":2}]}'
    assert repair.loads(raw) == {"S": [{"url": "stratum://x/}{y"}, {"b": 2}]}


def test_btminer_trailing_comma_in_object() -> None:
    raw = b'{"SUMMARY":[{"Elapsed":33102,"Chip Temp Avg":73.87,}],"id":1}'
    assert repair.loads(raw) == {"SUMMARY": [{"Elapsed": 33102, "Chip Temp Avg": 73.87}], "id": 1}


def test_trailing_comma_in_array() -> None:
    assert repair.loads(b'{"DEVS":[{"a":1},{"b":2},]}') == {"DEVS": [{"a": 1}, {"b": 2}]}


def test_leading_comma_in_array() -> None:
    assert repair.loads(b'{"DEVS":[,{"a":1}]}') == {"DEVS": [{"a": 1}]}


def test_a_comma_brace_inside_a_string_is_left_alone() -> None:
    assert repair.loads(b'{"a":"x,}","b":[1,],}') == {"a": "x,}", "b": [1]}


@pytest.mark.parametrize("token", [b"nan", b"-nan", b"inf", b"-inf", b"NaN", b"Infinity", b"-Infinity"])
def test_bare_non_finite_numbers_become_null(token: bytes) -> None:
    assert repair.loads(b'{"Work Utility":' + token + b',"x":1}') == {"Work Utility": None, "x": 1}


def test_quoted_inf_and_nan_stay_strings_and_coerce_to_no_data() -> None:
    data = repair.loads(b'{"a":"inf","b":"nan","c":"-nan"}')
    assert data == {"a": "inf", "b": "nan", "c": "-nan"}
    assert [repair.number(v) for v in data.values()] == [None, None, None]


def test_words_containing_nan_or_inf_are_not_touched() -> None:
    # "info", "infant" etc. are only ever inside strings, but a key such as Info must survive too.
    raw = b'{"Info":"inflight nanny","v":nan}'
    assert repair.loads(raw) == {"Info": "inflight nanny", "v": None}


def test_non_utf8_bytes_are_replaced() -> None:
    raw = b'{"Msg":"temp 75\xb0C","v":1}\x00'
    assert repair.loads(raw) == {"Msg": "temp 75\ufffdC", "v": 1}


def test_several_faults_in_one_reply() -> None:
    raw = b'{"STATS":[{"a":1,}{"b":inf}],"id":1,}\x00'
    assert repair.loads(raw) == {"STATS": [{"a": 1}, {"b": None}], "id": 1}


@pytest.mark.parametrize(
    "raw",
    [
        b'{"SUMMARY":[{"Elapsed":33102,"MHS',  # btminer truncated mid-list
        b"\x16\x03\x01\x02\x00\x01\x00",  # a TLS hello
        b"HTTP/1.1 400 Bad Request\r\n\r\n",
        b'{"a":1}}',
        b"",
    ],
)
def test_beyond_repair(raw: bytes) -> None:
    with pytest.raises(repair.BeyondRepair):
        repair.loads(raw)


def test_beyond_repair_is_malformed_with_the_first_bytes_kept() -> None:
    raw = b'{"SUMMARY":[{"Elapsed":33102,"MHS' + b"x" * 500
    with pytest.raises(MinerMalformed) as info:
        decode(raw, "10.0.0.1:4028")
    assert info.value.head == raw[:200]
    assert info.value.miner == "10.0.0.1:4028"
    assert isinstance(info.value.__cause__, repair.BeyondRepair)


def test_a_json_array_is_malformed() -> None:
    with pytest.raises(MinerMalformed):
        decode(b"[1,2]\x00", "m")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (5, 5.0),
        (5.5, 5.5),
        ("  5.0000", 5.0),  # padded (Antminer D3 and others)
        ("13628.52", 13628.52),
        ("-1", -1.0),
        ("", None),
        ("   ", None),
        ("inf", None),
        ("nan", None),
        ("-nan", None),
        ("12 GH", None),
        (True, None),
        (None, None),
        ([1], None),
        (math.inf, None),
        (math.nan, None),
    ],
)
def test_numeric_coercion(value: object, expected: float | None) -> None:
    assert repair.number(value) == expected


@pytest.mark.parametrize(
    ("directory", "command"),
    [
        ("antminer-s9_bmminer", "stats"),
        ("whatsminer-m31s_btminer", "summary"),
        ("whatsminer-m31s_btminer", "edevs"),
        ("avalon-1246_cgminer", "summary"),
    ],
)
def test_recorded_faulty_replies_need_and_survive_repair(directory: str, command: str) -> None:
    raw = fixture_bytes(directory, command)
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(raw.rstrip(b"\x00"))
    assert isinstance(repair.loads(raw), dict)


def test_btminer_missing_comma_before_a_key() -> None:
    # btminer 2023-01-06: an empty string value run into the next key: "..."",""temp0"
    raw = b'{"DEVS":[{"Chip Temp Avg":""\n"temp0":71.5,"PCB SN":"HEM4P2"}]}'
    assert repair.loads(raw) == {"DEVS": [{"Chip Temp Avg": "", "temp0": 71.5, "PCB SN": "HEM4P2"}]}


def test_adjacent_quotes_inside_a_string_are_left_alone() -> None:
    raw = b'{"a":"say \\"hi\\"","b":[1,]}'
    assert repair.loads(raw) == {"a": 'say "hi"', "b": [1]}


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.sampled_from('ab }{][,:"\\nainf- \n\t\u00b0')),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(alphabet=st.sampled_from('ab }{,"nan'), max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(_json_values)
def test_repairs_never_change_valid_json(value: object) -> None:
    """Every repair is narrow: applied to valid JSON (strings full of }{ ,} nan inf) it changes nothing."""
    for text in (orjson.dumps(value).decode(), json.dumps(value, indent=1)):
        assert repair.repair_text(text) == text


@settings(max_examples=500, deadline=None)
@given(
    st.binary(max_size=300)
    | st.text(alphabet=st.sampled_from('{}[],:"\\ nainf0-1.\x00e'), max_size=200).map(str.encode)
)
def test_any_bytes_decode_to_an_object_or_a_classified_error(raw: bytes) -> None:
    try:
        assert isinstance(decode(raw, "m"), dict)
    except MinerMalformed as exc:
        assert exc.head == raw[:200]
