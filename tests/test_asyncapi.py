"""Issue 17 item 14: the MQTT interface is documented in an AsyncAPI document generated from
the wire schema, checked in as docs/asyncapi.json, and kept current by this test."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vigil.ingest.asyncapi import dumps, generate
from vigil.ingest.schema import MESSAGE_TYPES
from vigil.ingest.topics import STATE_TOPICS, TOPIC_KIND, expected_kind

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "asyncapi.json"
#: the official parser, installed by ``make test`` (npm)
PARSER = REPO / ".asyncapi" / "node_modules" / "@asyncapi" / "parser"


@pytest.fixture(scope="module")
def doc() -> dict:
    return generate()


def test_checked_in_document_is_current() -> None:
    assert DOC.exists(), "run: python -m vigil.ingest.asyncapi > docs/asyncapi.json"
    assert DOC.read_text() == dumps(), (
        "docs/asyncapi.json is stale: run python -m vigil.ingest.asyncapi > docs/asyncapi.json"
    )


def test_module_prints_the_document() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "vigil.ingest.asyncapi"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    ).stdout
    assert out == dumps()


def _refs(node, found: list[str]) -> list[str]:
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref":
                found.append(v)
            else:
                _refs(v, found)
    elif isinstance(node, list):
        for v in node:
            _refs(v, found)
    return found


def _resolve(doc: dict, ref: str):
    assert ref.startswith("#/"), ref
    node = doc
    for part in ref[2:].split("/"):
        assert isinstance(node, dict) and part in node, f"{ref}: no {part!r}"
        node = node[part]
    return node


def test_structure_and_every_reference_resolves(doc) -> None:
    assert doc["asyncapi"] == "3.0.0"
    assert doc["info"]["title"] and doc["info"]["version"]
    for key in ("channels", "operations", "components"):
        assert doc[key], key
    for ref in _refs(doc, []):
        _resolve(doc, ref)
    for cid, ch in doc["channels"].items():
        names = set(re.findall(r"{(\w+)}", ch["address"]))
        assert names == set(ch.get("parameters", {})), cid
        for m in ch["messages"].values():
            message = _resolve(doc, m["$ref"])
            if "$ref" in message["payload"]:
                _resolve(doc, message["payload"]["$ref"])
    for oid, op in doc["operations"].items():
        assert op["action"] in ("send", "receive"), oid
        channel_ref = op["channel"]["$ref"]
        for m in op["messages"]:
            assert m["$ref"].startswith(channel_ref + "/messages/"), oid
        mqtt = op["bindings"]["mqtt"]
        assert mqtt["qos"] == 1 and isinstance(mqtt["retain"], bool), oid


def test_every_topic_kind_and_state_topic_is_documented(doc) -> None:
    """Each channel's address, filled in, carries the kind its message names; every wire kind
    has a channel; the state topics, and only they, are retained."""
    by_kind: dict[str, list[str]] = {}
    for cid, ch in doc["channels"].items():
        topic = re.sub(r"{(\w+)}", lambda m: {"sector": "tucson"}.get(m[1], "x1"), ch["address"])
        kind = expected_kind(topic)
        by_kind.setdefault(kind, []).append(cid)
        op = doc["operations"][f"send{cid}"]
        assert op["bindings"]["mqtt"]["retain"] == ("/state/" in topic), cid
        if kind is not None:
            payloads = {
                _resolve(doc, m["$ref"])["payload"].get("$ref", "").rsplit("/", 1)[-1]
                for m in ch["messages"].values()
            }
            want = next(t.__name__ for t in MESSAGE_TYPES if t.__struct_config__.tag == kind)
            assert want in payloads, (cid, kind, payloads)
    for kind in TOPIC_KIND.values():
        assert kind in by_kind, f"no channel for {kind}"
    # sensor_status: a ground sensor's, a camera's health (cam/{camera}/status), the state
    assert len(by_kind["alert"]) == 2 and len(by_kind["sensor_status"]) == 3
    assert len(STATE_TOPICS) == sum("/state/" in c["address"] for c in doc["channels"].values())
    schemas = doc["components"]["schemas"]
    assert schemas["Alert"]["properties"]["alert_id"]["pattern"]  # bounds travel with it


@pytest.mark.skipif(
    shutil.which("node") is None or not PARSER.exists(),
    reason="the AsyncAPI parser (npm @asyncapi/parser) is not installed in .asyncapi/ (make test)",
)
def test_official_parser_accepts_it(tmp_path) -> None:
    script = tmp_path / "check.mjs"
    script.write_text(
        "import { Parser } from '" + str(PARSER / "cjs" / "index.js") + "';\n"
        "import fs from 'fs';\n"
        "const parser = new Parser();\n"
        f"const {{ document, diagnostics }} = await parser.parse(fs.readFileSync("
        f"{json.dumps(str(DOC))}, 'utf8'));\n"
        "const errors = diagnostics.filter(d => d.severity === 0);\n"
        "console.log(JSON.stringify(errors.map(d => [d.code, d.message, d.path.join('/')])));\n"
        "process.exit(document && errors.length === 0 ? 0 : 1);\n"
    )
    r = subprocess.run(["node", str(script)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]


def test_publishers_and_subscribers_match_the_code(doc) -> None:
    """Who the document says reads each topic is who subscribes to it in the code: the
    service's input filters, the live map's filters, and the agents' ACL; and the publishers
    are who the broker's ACL lets write it."""
    from vigil.broker import identities
    from vigil.config import load_default
    from vigil.ingest.topics import topic_matches
    from vigil.maps.live.state import map_topics
    from vigil.service import input_patterns

    d = load_default()
    ids = identities(d, maps=1)
    agent = next(i for i in ids if i.role == "agent")
    service = next(i for i in ids if i.role == "service")
    for cid, ch in doc["channels"].items():
        topic = re.sub(r"{(\w+)}", lambda m: {"sector": d.sector}.get(m[1], "t03"), ch["address"])
        op = doc["operations"][f"send{cid}"]
        subs = set(op["x-vigil-subscribers"])
        if "/state/" in topic:  # for late joiners: whom the broker lets read them
            assert subs == {"late joiners"}, cid
            the_map = next(i for i in ids if i.role == "map")
            assert any(topic_matches(p, topic) for p in the_map.read), cid
            assert any(topic_matches(p, topic) for p in agent.read) == ("/alerts/" in topic)
            continue
        assert ("service" in subs) == any(topic_matches(p, topic) for p in input_patterns(d.sector))
        assert ("map" in subs) == any(topic_matches(p, topic) for p in map_topics(d.sector)), cid
        assert ("agents" in subs) == any(topic_matches(p, topic) for p in agent.read), cid
        writes = any(topic_matches(p, topic) for p in service.write)
        assert writes == (op["x-vigil-publisher"] == "service"), cid
