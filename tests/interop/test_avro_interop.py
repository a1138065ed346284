"""Avro interop: crmsync's C encoder/decoder against fastavro, an implementation nobody here wrote.

Given only schemas/*.avsc, fastavro must read what crmsync writes (single-object and Confluent
framing, fingerprint = fastavro's own CRC-64-AVRO of the schema), and crmsync must read what
fastavro writes, including records written with schemas/old/ProspectChange.v1.avsc and v2, which
it resolves into the current schema exactly as fastavro's own schema resolution does.

Needs the crmsync-avro-sample program (tests/interop/avro_sample_writer.c) in CRMSYNC_BIN_DIR.
"""

import io
import json
import os
import struct
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.schema import fingerprint, to_parsing_canonical_form

SRC = Path(os.environ.get("CRMSYNC_SOURCE_DIR", Path(__file__).resolve().parents[2]))
BIN = Path(os.environ.get("CRMSYNC_BIN_DIR", SRC / "build" / "bin"))
SAMPLE = BIN / "crmsync-avro-sample"
NAMES = ["ProspectChange", "Activity", "CrmChange", "SyncState", "SyncError", "Control"]
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def ts(ms):
    return EPOCH + timedelta(milliseconds=ms)


def load(rel):
    return parse_schema(json.loads((SRC / "schemas" / rel).read_text()))


def fp_bytes(schema):
    """The 8 fingerprint bytes as they appear on the wire (fastavro gives them in that order)."""
    return bytes.fromhex(fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO"))


def frame(schema, record):
    bio = io.BytesIO()
    schemaless_writer(bio, schema, record)
    return b"\xc3\x01" + fp_bytes(schema) + bio.getvalue()


def read_body(schema, body, reader_schema=None):
    bio = io.BytesIO(body)
    rec = schemaless_reader(bio, schema, reader_schema)
    assert bio.tell() == len(body), "trailing bytes after the record"
    return rec


# What crmsync-avro-sample writes (mirrors fill() in avro_sample_writer.c).
SAMPLES = {
    "ProspectChange": {
        "event_id": "evt-0001", "prospect_key": "ada@example.com", "prospect_id": 123456789012,
        "cause": "ASSIGNMENT", "updated_at": ts(1700000000123),
        "last_activity_at": ts(1700000000456), "event_time": ts(1700000000999),
        "email": "Ada@Example.com", "first_name": "Ada", "last_name": "Lovelace \u00e9",
        "company": None, "phone": "+44 20 7946 0000", "job_title": "", "opted_out": True,
        "score": -42, "grade": "A-", "assigned_user_id": 77, "do_not_sync": False,
        "crm_lead_id": "00Q000000000001AAA", "crm_contact_id": None,
        "crm_owner_id": "005000000000001AAA",
        "custom_fields": {"Industry__c": "Computing", "Empty__c": None},
        "changed_fields": ["first_name", "assigned_user_id"], "updated_by_id": 101,
    },
    "Activity": {
        "event_id": "act-9", "prospect_key": "bob@example.org", "prospect_id": 5,
        "email": "bob@example.org", "type": "TRACKED_LINK_CLICK", "identified": True,
        "score_delta": 3, "occurred_at": ts(1600000000000), "event_time": ts(1600000000001),
        "source_activity_id": 2**63 - 1,
    },
    "CrmChange": {
        "event_id": "crm-1", "prospect_key": "", "object": "CONTACT",
        "crm_id": "003000000000042AAA", "owner_id": "005000000000002AAA", "email": None,
        "first_name": "Grace", "last_name": "Hopper", "company": "Navy", "phone": "555",
        "title": "RADM", "opted_out": False, "custom_fields": {"Region__c": "EMEA"},
        "changed_fields": ["Title"], "last_modified_date": ts(1650000000000),
        "system_modstamp": ts(1650000000500), "last_modified_by_id": "005CONNECTORUSERAA",
        "external_id": "123456789012", "deleted": True, "event_time": ts(1650000000600),
    },
    "SyncState": {
        "prospect_key": "ada@example.com", "prospect_id": 1,
        "marketing_watermark": ts(1700000000123), "crm_watermark": ts(1650000000000),
        "updated_at": ts(1700000000123), "last_activity_at": None,
        "crm_last_modified": ts(1650000000000), "crm_object": "LEAD",
        "crm_id": "00Q000000000001AAA", "assigned_user_id": 77, "do_not_sync": True,
        "fields": [
            {"name": "email", "value": "ada@example.com", "time": ts(1700000000000),
             "side": "MARKETING", "hash": 0xFEDCBA98},
            {"name": "custom:Region__c", "value": None, "time": ts(1650000000000),
             "side": "CRM", "hash": 0},
        ],
        "last_result": "OK", "pending": True,
    },
    "SyncError": {
        "error_id": "err-7", "prospect_key": "ada@example.com", "direction": "INPUT",
        "code": "POISON_UNKNOWN_SCHEMA", "message": "fingerprint 0123456789abcdef unknown",
        "attempts": 4, "first_at": ts(1), "last_at": ts(2), "topic": "crmsync.prospect-changes",
        "partition": 11, "offset": 1234567, "payload": b"\xde\xad\x00\xbe\xef",
    },
    "Control": {
        "command_id": "cmd-1", "command": "SYNC_NOW", "prospect_keys": ["a@x.io", "b@x.io"],
        "error_ids": [], "issued_at": ts(1700000000000), "issued_by": "admin",
    },
}


def edge_cases():
    """Records fastavro writes for crmsync to read: extremes, nulls, Unicode, sizes."""
    pc_min = {k: None for k in SAMPLES["ProspectChange"]}
    pc_min.update(event_id="", prospect_key="", cause="OTHER", updated_at=ts(0),
                  event_time=ts(-1000), opted_out=False, score=-(2**31), do_not_sync=True,
                  custom_fields={}, changed_fields=[])
    pc_max = dict(SAMPLES["ProspectChange"], prospect_id=-(2**63), score=2**31 - 1,
                  assigned_user_id=2**63 - 1, first_name="\U0001F600 \u4e2d\u6587 \x00nul",
                  custom_fields={f"Field{i}__c": (None if i % 3 else "v" * i) for i in range(60)},
                  changed_fields=[f"f{i}" for i in range(200)], cause="SYNC_NOW")
    act_long = dict(SAMPLES["Activity"], event_id="e" * 10000, email=None, prospect_id=None,
                    type="OTHER", identified=False, score_delta=-5, source_activity_id=None)
    crm = dict(SAMPLES["CrmChange"], object="LEAD", custom_fields={}, changed_fields=[],
               owner_id=None, last_modified_by_id=None, external_id=None, deleted=False)
    ss = dict(SAMPLES["SyncState"], crm_object=None, crm_id=None, last_result=None,
              fields=[{"name": f"f{i}", "value": str(i) if i % 2 else None, "time": ts(i),
                       "side": "CRM" if i % 2 else "MARKETING", "hash": i * 7919}
                      for i in range(100)])
    se = dict(SAMPLES["SyncError"], payload=bytes(range(256)), partition=None, offset=None,
              topic=None, direction="TO_CRM")
    ctl = dict(SAMPLES["Control"], command="RETRY_ERROR", prospect_keys=[],
               error_ids=["err-1", "err-2", "err-3"])
    return [("ProspectChange", pc_min), ("ProspectChange", pc_max), ("Activity", act_long),
            ("CrmChange", crm), ("SyncState", ss), ("SyncError", se), ("Control", ctl)] + \
        [(n, SAMPLES[n]) for n in NAMES]


@pytest.fixture(scope="module")
def sample_bin():
    if not SAMPLE.exists():
        pytest.fail(f"{SAMPLE} not built (tests/interop/CMakeLists.txt)")
    return SAMPLE


@pytest.fixture(scope="module")
def written(sample_bin, tmp_path_factory):
    out = tmp_path_factory.mktemp("avro")
    subprocess.run([str(sample_bin), "write", str(out)], check=True)
    return out


@pytest.mark.parametrize("name", NAMES)
def test_fastavro_reads_single_object(written, name):
    schema = load(f"{name}.avsc")
    data = (written / f"{name}.bin").read_bytes()
    assert data[:2] == b"\xc3\x01", "single-object marker"
    assert data[2:10] == fp_bytes(schema), "fingerprint must be fastavro's CRC-64-AVRO"
    assert read_body(schema, data[10:]) == SAMPLES[name]


@pytest.mark.parametrize("index,name", list(enumerate(NAMES)))
def test_fastavro_reads_confluent(written, index, name):
    schema = load(f"{name}.avsc")
    data = (written / f"{name}.confluent.bin").read_bytes()
    assert data[:5] == b"\x00" + struct.pack(">I", 1000 + index)
    assert read_body(schema, data[5:]) == SAMPLES[name]
    # Same body as the single-object frame.
    assert data[5:] == (written / f"{name}.bin").read_bytes()[10:]


def recode(sample_bin, tmp_path, data, tag):
    src, dst = tmp_path / f"{tag}.in", tmp_path / f"{tag}.out"
    src.write_bytes(data)
    res = subprocess.run([str(sample_bin), "recode", str(src), str(dst)], capture_output=True,
                         text=True)
    assert res.returncode == 0, res.stderr
    return res.stdout.split(), dst.read_bytes()


@pytest.mark.parametrize("case", range(len(edge_cases())))
def test_crmsync_reads_fastavro(sample_bin, tmp_path, case):
    name, record = edge_cases()[case]
    schema = load(f"{name}.avsc")
    data = frame(schema, record)
    (sname, how), out = recode(sample_bin, tmp_path, data, f"case{case}")
    assert sname == f"crmsync.{name}" and how == "current"
    assert out == data, "decode + re-encode must give fastavro's bytes back"
    assert read_body(schema, out[10:]) == record


@pytest.mark.parametrize("version,added", [
    ("v1", {"custom_fields": {}, "changed_fields": [], "updated_by_id": None}),
    ("v2", {"updated_by_id": None}),
])
def test_crmsync_resolves_old_version(sample_bin, tmp_path, version, added):
    old, cur = load(f"old/ProspectChange.{version}.avsc"), load("ProspectChange.avsc")
    assert fp_bytes(old) != fp_bytes(cur)
    record = {k: v for k, v in SAMPLES["ProspectChange"].items() if k not in added}
    data = frame(old, record)
    (sname, how), out = recode(sample_bin, tmp_path, data, version)
    assert sname == "crmsync.ProspectChange" and how == "resolved"
    assert out[:10] == b"\xc3\x01" + fp_bytes(cur), "re-encoded with the current schema"
    got = read_body(cur, out[10:])
    assert got == dict(record, **added)
    # fastavro's own schema resolution gives the same answer.
    assert read_body(old, data[10:], reader_schema=cur) == got


def test_crmsync_rejects_unknown_fingerprint(sample_bin, tmp_path):
    schema = load("Control.avsc")
    data = bytearray(frame(schema, SAMPLES["Control"]))
    data[2] ^= 0xFF
    src = tmp_path / "bad.in"
    src.write_bytes(bytes(data))
    res = subprocess.run([str(sample_bin), "recode", str(src), str(tmp_path / "bad.out")],
                         capture_output=True, text=True)
    assert res.returncode != 0
    assert "CS_ERR_UNKNOWN_SCHEMA" in res.stderr
