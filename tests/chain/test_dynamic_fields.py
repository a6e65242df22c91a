"""chain.dynamic_fields: Sui's derived dynamic-field ids, checked against the official TypeScript SDK."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from chain import bcs
from chain.dynamic_fields import dynamic_field_id, type_tag_bcs

INTEROP_DIR = Path(__file__).resolve().parent.parent / "interop"



class TestTypeTags:
    @pytest.mark.parametrize(("type_name", "expected"), [
        ("u64", "02"), ("address", "04"), ("vector<u8>", "0601"), ("vector<vector<u16>>", "060608"),
        ("0x2::object::ID", "07" + "00" * 31 + "02" + "066f626a656374" + "024944" + "00"),
        ("0x2::coin::Coin<0x2::sui::SUI>", "07" + "00" * 31 + "02" + "04636f696e" + "04436f696e" + "01"
         + "07" + "00" * 31 + "02" + "03737569" + "03535549" + "00"),
    ])
    def test_encodings(self, type_name, expected):
        assert type_tag_bcs(type_name).hex() == expected

    @pytest.mark.parametrize("bad", ["", "vector<u8", "0x2::object", "u64>", "vector<" * 20 + "u8" + ">" * 20, "x" * 2000])
    def test_malformed_types_are_rejected(self, bad):
        with pytest.raises(ValueError):
            type_tag_bcs(bad)


@pytest.mark.interop
def test_ids_match_the_typescript_sdk():
    cases = [
        ("0x5", "u64", bcs.u64(2).hex()),
        ("0x" + "ab" * 32, "vector<u8>", bcs.byte_vector(b"metadata").hex()),
        ("0x1234", "address", bcs.address("0x" + "cd" * 32).hex()),
        ("0x1234", "0x2::object::ID", bcs.address("0x7").hex()),
    ]
    node = shutil.which("node")
    if node is None or not (INTEROP_DIR / "node_modules" / "@mysten" / "sui").is_dir():
        pytest.fail("node and tests/interop/node_modules are required (run `make node`)")
    script = (
        "import { deriveDynamicFieldID } from '@mysten/sui/utils';\n"
        "import { readFileSync } from 'node:fs';\n"
        "const cases = JSON.parse(readFileSync(0, 'utf8'));\n"
        "console.log(JSON.stringify(cases.map(([p, t, k]) => deriveDynamicFieldID(p, t, Buffer.from(k, 'hex')))));\n"
    )
    completed = subprocess.run([node, "--input-type=module", "-e", script], input=json.dumps(cases), cwd=INTEROP_DIR,
                               capture_output=True, text=True, timeout=60, check=True)
    expected = json.loads(completed.stdout)
    assert [dynamic_field_id(parent, name_type, bytes.fromhex(key)) for parent, name_type, key in cases] == expected
