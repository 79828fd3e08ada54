"""Each plugin README's configuration table lists exactly the config schema
the plugin declares (key, type, default, required, description), as the
running daemon reports it on GET /v1/plugins."""

import json
import os
import unittest

from pipeline_support import PipelineTestCase
import swh_harness

PLUGINS = {
    "content_filter": "middleware_content_filter",
    "personalization": "middleware_personalization",
    "analytics": "middleware_analytics",
    "metrics": "hook_metrics",
    "backup": "hook_backup",
    "user_behavior": "hook_user_behavior",
    "templated": "session_templated",
    "collaborative": "session_collaborative",
    "multimodal": "session_multimodal",
}
README_TYPES = {"string": "string", "string list": "list of strings", "object": "map", "bool": "boolean",
                "integer": "integer", "number": "number"}


def readme_rows(path):
    """The rows of the table under '## Configuration': {key: (type, default, description)}."""
    rows, in_section = {}, False
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("## "):
                in_section = line.strip() == "## Configuration"
                continue
            if not in_section or not line.startswith("| `"):
                continue
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            key, type_, default, description = cells[0], cells[1], cells[2], "|".join(cells[3:])
            rows[key.strip("`")] = (type_, default, description)
    return rows


class ReadmeSchemaTests(PipelineTestCase):
    hooks = [
        {"name": "metrics", "plugin": "metrics"},
        {"name": "backup", "plugin": "backup", "config": {"dir": "{workdir}/b"}},
        {"name": "user_behavior", "plugin": "user_behavior", "config": {"output_file": "{workdir}/f.jsonl"}},
    ]

    def test_readmes_match_declared_schemas(self):
        r = self.client.get("/v1/plugins")
        self.assertEqual(r.status, 200, r)
        listed = r.json["plugins"] if isinstance(r.json, dict) else r.json
        by_name = {p["name"]: p for p in listed}
        for plugin, folder in PLUGINS.items():
            with self.subTest(plugin=plugin):
                self.assertIn(plugin, by_name)
                schema = {f["key"]: f for f in by_name[plugin]["config_schema" if "config_schema" in by_name[plugin]
                                                              else "schema"]}
                rows = readme_rows(os.path.join(swh_harness.REPO_ROOT, "plugins", folder, "README.md"))
                self.assertEqual(list(rows), list(schema), "README keys (in order) vs declared schema")
                for key, field in schema.items():
                    type_, default, description = rows[key]
                    self.assertEqual(README_TYPES.get(type_), field["type"], key)
                    if field["required"]:
                        self.assertEqual(default, "(required)", key)
                    else:
                        self.assertEqual(json.loads(default.strip("`")), field.get("default"), key)
                    self.assertEqual(description.replace("`", ""), field["description"].replace("`", ""), key)


if __name__ == "__main__":
    unittest.main()
