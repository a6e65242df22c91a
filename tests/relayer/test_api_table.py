"""The API table generator on its own: rendering, README's block, the command line and its errors."""

from __future__ import annotations

import json

import pytest

from relayer.api_table import BEGIN_MARKER, END_MARKER, ApiTableError, block_of, main, markdown_table, replace_block

DOCUMENT = {
    "paths": {
        "/v1/owners/{owner}/memories": {"get": {
            "summary": "List | page", "x-rate-limit": "owner read budget, weight 1",
            "security": [{"x-public-key": [], "x-signature": []}, {"owner-token": []}],
            "responses": {"200": {}, "401": {}, "403": {}},
        }},
        "/api/remember": {"post": {
            "summary": "Store", "x-rate-limit": "write budget, weight 5",
            "security": [{"x-public-key": []}], "responses": {"202": {}, "400": {}},
        }},
        "/health": {"get": {"summary": "Health", "responses": {"200": {}, "503": {}}}},
    },
}


def test_rows_are_sorted_by_path_with_auth_budget_statuses_and_escaped_summary():
    lines = markdown_table(DOCUMENT).splitlines()
    assert lines[2:] == [
        "| `POST /api/remember` | delegate signature | write budget, weight 5 | 202, 400 | Store |",
        "| `GET /health` | none | — | 200, 503 | Health |",
        "| `GET /v1/owners/{owner}/memories` | delegate signature or owner token | owner read budget, weight 1 "
        "| 200, 401, 403 | List \\| page |",
    ]


def test_block_is_replaced_between_the_markers_and_read_back():
    readme = f"intro\n{BEGIN_MARKER}\nold table\n{END_MARKER}\noutro\n"
    updated = replace_block(readme, "new table\n")
    assert updated == f"intro\n{BEGIN_MARKER}\nnew table\n{END_MARKER}\noutro\n"
    assert block_of(updated) == "new table\n"
    with pytest.raises(ApiTableError):
        block_of("no markers here")
    with pytest.raises(ApiTableError):
        replace_block(f"{END_MARKER}\n{BEGIN_MARKER}\n", "x")


def test_command_line_rewrites_a_readme_from_a_file(tmp_path, capsys):
    source = tmp_path / "openapi.json"
    source.write_text(json.dumps(DOCUMENT))
    readme = tmp_path / "README.md"
    readme.write_text(f"{BEGIN_MARKER}\n{END_MARKER}\n")
    assert main([str(source), "--readme", str(readme)]) == 0
    assert block_of(readme.read_text()) == markdown_table(DOCUMENT)
    assert main([str(source)]) == 0
    assert capsys.readouterr().out == markdown_table(DOCUMENT)


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "is not JSON"),
    ('{"openapi": "3.1.0"}', "not an OpenAPI document"),
    ("x" * (4 * 1024 * 1024 + 1), "over"),
])
def test_bad_documents_are_refused_in_one_line(tmp_path, capsys, content, message):
    source = tmp_path / "openapi.json"
    source.write_text(content)
    assert main([str(source)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_missing_file_and_unreachable_url_are_clear_errors(tmp_path, capsys):
    assert main([str(tmp_path / "absent.json")]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert main(["http://127.0.0.1:9/openapi.json"]) == 2
    assert "cannot fetch" in capsys.readouterr().err
