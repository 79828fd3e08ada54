"""The `templated` session type (plugins/session_templated) through the real
daemon over loopback HTTP: creation with the shipped templates, the template
file schema, the workflow routes and their conflicts, the system prompt in
message metadata, the events on GET /v1/sessions/{id}/events, persistence
across a restart, and a malformed template folder stopping the daemon.

Expected values come from the guide (the brief the shipped templates
implement), from template files this test writes itself, or from the
shipped files' text; the harness uses the Python standard library only."""

import os
import re
import shutil
import subprocess
import unittest

import swh_harness
from swh_harness import Daemon, DaemonTestCase

REPO_ROOT = os.environ.get("SWH_REPO_ROOT") or swh_harness.REPO_ROOT
TEMPLATES_DIR = os.path.join(REPO_ROOT, "configs", "templates")
EXIT_DEADLINE_S = 20.0  # a daemon that refuses its manifest must exit within this

# The guide's TemplatedSession templates: system prompts, steps, extras.
GUIDE = {
    "customer_support": {
        "system_prompt": "You are a helpful customer support agent.",
        "steps": ["greeting", "issue_identification", "solution", "follow_up"],
        "extras": {},
    },
    "code_review": {
        "system_prompt": "You are an expert code reviewer.",
        "steps": ["code_analysis", "feedback", "suggestions", "approval"],
        "extras": {"code_standards": ["PEP8", "security", "performance", "maintainability"]},
    },
    "interview": {
        "system_prompt": "You are conducting a technical interview.",
        "steps": ["introduction", "technical_questions", "coding_challenge", "wrap_up"],
        "extras": {"difficulty_levels": ["junior", "mid", "senior"]},
    },
}


def session_types_yaml(templates_dir, name=None):
    """A manifest `session_types:` section appended to the harness's manifest."""
    return ("session_types:\n"
            "  - plugin: templated\n"
            + ("    name: %s\n" % name if name else "")
            + "    config:\n"
            "      templates_dir: %s\n" % swh_harness.yaml_str(templates_dir))


def shipped_files():
    """{template name: file text} of configs/templates (name: the top-level
    `name:` line, else the file stem)."""
    out = {}
    for entry in sorted(os.listdir(TEMPLATES_DIR)):
        stem, ext = os.path.splitext(entry)
        if ext not in (".yaml", ".yml"):
            continue
        with open(os.path.join(TEMPLATES_DIR, entry), encoding="utf-8") as f:
            text = f.read()
        m = re.search(r"^name:\s*(\S+)\s*$", text, re.M)
        out[m.group(1) if m else stem] = text
    return out


def squash(text):
    """Whitespace runs -> one space (YAML folded scalars join lines so)."""
    return " ".join(text.split())


class TemplatedCase(DaemonTestCase):
    manifest_kw = {"extra_providers": session_types_yaml(TEMPLATES_DIR)}

    # ---- helpers
    def create(self, template, user="alice", type_="templated"):
        return self.client.create_session(user, type=type_, metadata={"template": template})

    def route(self, method, sid, path):
        return self.client.request(method, "/v1/sessions/%s/%s" % (sid, path))

    def ok(self, method, sid, path):
        r = self.route(method, sid, path)
        self.assertEqual(r.status, 200, r)
        self.assertIsInstance(r.json, dict, r)
        return r.json

    def workflow(self, sid):
        return self.ok("GET", sid, "workflow")

    def template(self, name):
        """GET template of a fresh session of `name`."""
        return self.ok("GET", self.create(name)["id"], "template")

    def step_prompt(self, name, index):
        return self.template(name)["steps"][index]["prompt"]


class CreationTests(TemplatedCase):
    def test_the_guide_templates_are_shipped(self):
        files = shipped_files()
        for name, guide in GUIDE.items():
            with self.subTest(template=name):
                self.assertIn(name, files)
                tpl = self.template(name)
                self.assertEqual(tpl["name"], name)
                self.assertEqual(tpl["system_prompt"], guide["system_prompt"])
                self.assertEqual([s["name"] for s in tpl["steps"]], guide["steps"])
                self.assertEqual(tpl["extras"], guide["extras"])
                self.assertTrue(tpl["description"])
                # Every prompt and suggestion is non-empty and comes from the file.
                text = squash(files[name])
                for step in tpl["steps"]:
                    self.assertTrue(step["prompt"], step)
                    self.assertIn(squash(step["prompt"]), text)
                    self.assertTrue(step["suggested_responses"], step)
                    for answer in step["suggested_responses"]:
                        self.assertIn(answer, text)

    def test_create_with_each_shipped_template(self):
        for name in shipped_files():
            with self.subTest(template=name):
                session = self.create(name)
                self.assertEqual(session["type"], "templated")
                self.assertEqual(session["metadata"]["template"], name)
                state = session["metadata"]["templated"]
                self.assertEqual(state["template"], name)
                self.assertEqual(state["status"], "not_started")
                tpl = self.ok("GET", session["id"], "template")
                self.assertEqual(state["steps"], [s["name"] for s in tpl["steps"]])
                self.assertEqual(state["total_steps"], len(tpl["steps"]))
                self.assertEqual(state["completed_steps"], [])
                for key in ("current_step", "current_step_name", "started_at", "started_at_us", "completed_at",
                            "completed_at_us", "duration_seconds"):
                    self.assertIsNone(state[key], key)

                # The state is stored, not only echoed.
                stored = self.client.get("/v1/sessions/%s" % session["id"])
                self.assertEqual(stored.status, 200, stored)
                self.assertEqual(stored.json["metadata"]["templated"], state)
                self.assertEqual(self.workflow(session["id"]), state)

    def test_unknown_or_missing_template_is_400_listing_the_templates(self):
        user = "nobody-%s" % self.id()
        bodies = [{"user_id": user, "type": "templated", "metadata": {"template": "no_such_template"}},
                  {"user_id": user, "type": "templated", "metadata": {}},
                  {"user_id": user, "type": "templated"},
                  {"user_id": user, "type": "templated", "metadata": {"template": 7}}]
        for body in bodies:
            with self.subTest(body=body):
                r = self.client.post("/v1/sessions", body)
                self.assertError(r, 400, "invalid_request")
                for name in shipped_files():
                    self.assertIn(name, r.json["error"]["message"])
        listed = self.client.get("/v1/sessions?user_id=%s" % user)
        self.assertEqual(listed.status, 200, listed)
        self.assertEqual(listed.json["sessions"], [], "a refused creation stored a session")

    def test_plugins_lists_the_routes(self):
        r = self.client.get("/v1/plugins")
        self.assertEqual(r.status, 200, r)
        text = r.raw.decode("utf-8")
        for path in ("workflow/start", "workflow/next", "workflow/complete", "template"):
            self.assertIn(path, text)


class WorkflowTests(TemplatedCase):
    def test_full_workflow_start_next_until_completed(self):
        tpl = self.template("customer_support")
        steps = GUIDE["customer_support"]["steps"]
        sid = self.create("customer_support")["id"]

        started = self.ok("POST", sid, "workflow/start")
        self.assertEqual(started["status"], "step_executed")
        self.assertEqual((started["step"], started["step_index"], started["total_steps"]),
                         (steps[0], 0, len(steps)))
        self.assertEqual(started["suggested_responses"], tpl["steps"][0]["suggested_responses"])
        self.assertEqual(started["prompt"], tpl["steps"][0]["prompt"])
        self.assertIsoTime(started["started_at"])
        state = self.workflow(sid)
        self.assertEqual(state["status"], "in_progress")
        self.assertEqual((state["current_step"], state["current_step_name"]), (0, steps[0]))
        self.assertEqual(swh_harness.iso_to_us(state["started_at"]), state["started_at_us"])
        self.assertEqual(started["workflow"], state)

        for index in range(1, len(steps)):
            answer = self.ok("POST", sid, "workflow/next")
            self.assertEqual(answer["status"], "step_executed")
            self.assertEqual((answer["step"], answer["step_index"], answer["total_steps"]),
                             (steps[index], index, len(steps)))
            self.assertEqual(answer["suggested_responses"], tpl["steps"][index]["suggested_responses"])
            self.assertEqual(answer["prompt"], tpl["steps"][index]["prompt"])
            state = self.workflow(sid)
            self.assertEqual((state["current_step"], state["current_step_name"]), (index, steps[index]))
            self.assertEqual(state["completed_steps"], steps[:index])

        done = self.ok("POST", sid, "workflow/next")  # past the last step: completes
        self.assertEqual(done["status"], "workflow_completed")
        self.assertEqual(done["completed_steps"], steps)
        self.assertEqual(done["skipped_steps"], [])
        state = self.workflow(sid)
        self.assertEqual(state["status"], "completed")
        self.assertIsNone(state["current_step"])
        self.assertIsNone(state["current_step_name"])
        self.assertEqual(state["completed_steps"], steps)
        self.assertEqual(swh_harness.iso_to_us(state["completed_at"]), state["completed_at_us"])
        self.assertGreaterEqual(state["completed_at_us"], state["started_at_us"])
        expected = (state["completed_at_us"] - state["started_at_us"]) / 1e6
        self.assertAlmostEqual(done["duration"], expected, places=6)
        self.assertAlmostEqual(state["duration_seconds"], expected, places=6)
        self.assertEqual(done["workflow"], state)

    def test_complete_early_lists_skipped_steps(self):
        steps = GUIDE["code_review"]["steps"]
        sid = self.create("code_review")["id"]
        self.ok("POST", sid, "workflow/start")
        self.ok("POST", sid, "workflow/next")
        done = self.ok("POST", sid, "workflow/complete")
        self.assertEqual(done["status"], "workflow_completed")
        self.assertEqual(done["completed_steps"], steps[:2])
        self.assertEqual(done["skipped_steps"], steps[2:])
        self.assertGreaterEqual(done["duration"], 0)
        self.assertEqual(self.workflow(sid)["status"], "completed")

    def test_conflicts_are_409(self):
        sid = self.create("interview")["id"]
        for path in ("workflow/next", "workflow/complete"):
            with self.subTest(before_start=path):
                self.assertError(self.route("POST", sid, path), 409, "conflict")
        self.assertEqual(self.workflow(sid)["status"], "not_started", "a refused call changed the state")

        self.ok("POST", sid, "workflow/start")
        before = self.workflow(sid)
        self.assertError(self.route("POST", sid, "workflow/start"), 409, "conflict")
        self.assertEqual(self.workflow(sid), before, "a refused start changed the state")

        self.ok("POST", sid, "workflow/complete")
        done = self.workflow(sid)
        for path in ("workflow/next", "workflow/complete", "workflow/start"):
            with self.subTest(after_completion=path):
                self.assertError(self.route("POST", sid, path), 409, "conflict")
        self.assertEqual(self.workflow(sid), done, "a refused call changed the completed state")

    def test_workflows_of_two_sessions_are_independent(self):
        a = self.create("interview")["id"]
        b = self.create("interview")["id"]
        self.ok("POST", a, "workflow/start")
        self.ok("POST", a, "workflow/next")
        self.assertEqual(self.workflow(b)["status"], "not_started")
        self.assertEqual(self.ok("POST", b, "workflow/start")["step_index"], 0)
        self.assertEqual(self.workflow(a)["current_step"], 1)


class MessageTests(TemplatedCase):
    def user_metadata(self, sid, content, metadata=None):
        body = {"metadata": metadata} if metadata is not None else {}
        r = self.client.send(sid, content, **body)
        self.assertEqual(r.status, 201, r)
        returned = r.json["user_message"]["metadata"]
        stored = [m for m in self.client.messages(sid) if m["role"] == "user" and m["content"] == content]
        self.assertEqual(len(stored), 1, stored)
        self.assertEqual(stored[0]["metadata"], returned, "stored metadata differs from the answer's")
        return returned

    def test_message_metadata_carries_the_step_system_prompt(self):
        system = GUIDE["customer_support"]["system_prompt"]
        steps = GUIDE["customer_support"]["steps"]
        prompts = [s["prompt"] for s in self.template("customer_support")["steps"]]
        sid = self.create("customer_support")["id"]

        meta = self.user_metadata(sid, "before start")
        self.assertEqual(meta["system_prompt"], system)
        self.assertEqual(meta["template"], "customer_support")
        self.assertNotIn("workflow_step", meta)

        self.ok("POST", sid, "workflow/start")
        meta = self.user_metadata(sid, "first step")
        self.assertEqual(meta["system_prompt"], system + "\n\n" + prompts[0])
        self.assertEqual(meta["workflow_step"], steps[0])

        self.ok("POST", sid, "workflow/next")
        # The template's prompt wins over one the client sends.
        meta = self.user_metadata(sid, "second step", metadata={"system_prompt": "client prompt", "k": "v"})
        self.assertEqual(meta["system_prompt"], system + "\n\n" + prompts[1])
        self.assertEqual(meta["workflow_step"], steps[1])
        self.assertEqual(meta["k"], "v", "the client's other metadata was lost")

        self.ok("POST", sid, "workflow/complete")
        meta = self.user_metadata(sid, "after completion")
        self.assertEqual(meta["system_prompt"], system)
        self.assertNotIn("workflow_step", meta)

    def test_untyped_session_messages_are_untouched(self):
        sid = self.client.create_session("alice")["id"]
        r = self.client.send(sid, "plain")
        self.assertEqual(r.status, 201, r)
        self.assertNotIn("system_prompt", r.json["user_message"]["metadata"])
        self.assertNotIn("template", r.json["user_message"]["metadata"])


class EventTests(TemplatedCase):
    def next_event(self, events, wanted, limit=50):
        """The next event named `wanted`; other events (message, …) are skipped, boundedly."""
        seen = []
        for _ in range(limit):
            ev = next(events)
            if ev.event == wanted:
                return ev
            seen.append(ev)
        self.fail("no %r event among %r" % (wanted, seen))

    def test_workflow_events_on_the_session_stream(self):
        steps = GUIDE["interview"]["steps"]
        sid = self.create("interview")["id"]
        stream = self.client.stream("/v1/sessions/%s/events" % sid, None, method="GET", deadline_s=60)
        self.assertIsInstance(stream, swh_harness.SSEStream, stream)
        try:
            events = iter(stream)
            ready = next(events)
            self.assertEqual(ready.event, "ready", ready)

            self.ok("POST", sid, "workflow/start")
            ev = self.next_event(events, "workflow_started")
            self.assertEqual(ev.json["session_id"], sid)
            self.assertEqual(ev.json["template"], "interview")
            self.assertEqual((ev.json["step"], ev.json["step_index"]), (steps[0], 0))
            self.assertEqual(ev.json["total_steps"], len(steps))

            self.ok("POST", sid, "workflow/next")
            ev = self.next_event(events, "workflow_step")
            self.assertEqual((ev.json["step"], ev.json["step_index"]), (steps[1], 1))
            self.assertEqual(ev.json["previous_step"], steps[0])

            done = self.ok("POST", sid, "workflow/complete")
            ev = self.next_event(events, "workflow_completed")
            self.assertEqual(ev.json["session_id"], sid)
            self.assertEqual(ev.json["completed_steps"], steps[:2])
            self.assertEqual(ev.json["duration"], done["duration"])
        finally:
            stream.close()


FIXTURE_FILES = {
    # No `name`: the file stem names it. Folded, literal and quoted scalars.
    "fixture_one.yaml": (
        "# a template written by the test\n"
        "description: \"Fixture: quoted\"\n"
        "system_prompt: >-\n"
        "  You are\n"
        "  a fixture.\n"
        "suggested_responses: [hi, \"there\"]\n"
        "steps:\n"
        "  - name: one\n"
        "    prompt: |\n"
        "      line one\n"
        "      line two\n"
        "    suggested_responses: [a, b]\n"
        "  - name: two\n"
        "limits: {count: 3, ratio: 2.5, strict: true, nothing: null, label: \"42\", plain: yes}\n"
        "levels: [junior, mid]\n"),
    # No system prompt: a step's prompt alone.
    "bare.yml": "name: bare\nsteps:\n  - name: only\n    prompt: step only\n",
    "ignored.txt": "not: [a template\n",
}
FIXTURE_ONE = {
    "name": "fixture_one",
    "description": "Fixture: quoted",
    "system_prompt": "You are a fixture.",
    "suggested_responses": ["hi", "there"],
    "steps": [{"name": "one", "prompt": "line one\nline two\n", "suggested_responses": ["a", "b"]},
              {"name": "two", "prompt": "", "suggested_responses": []}],
    "extras": {"limits": {"count": 3, "ratio": 2.5, "strict": True, "nothing": None, "label": "42",
                          "plain": "yes"},
               "levels": ["junior", "mid"]},
}


class TemplateSchemaTests(TemplatedCase):
    """Templates this test writes, so every expected value is known here."""

    @classmethod
    def setUpClass(cls):
        cls.tpl_dir = swh_harness.make_tmpdir(prefix="swh-templates-")
        for name, text in FIXTURE_FILES.items():
            with open(os.path.join(cls.tpl_dir, name), "w", encoding="utf-8") as f:
                f.write(text)
        cls.manifest_kw = {"extra_providers": session_types_yaml(cls.tpl_dir, name="guided")}
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            shutil.rmtree(cls.tpl_dir, ignore_errors=True)

    def test_template_file_schema(self):
        sid = self.create("fixture_one", type_="guided")["id"]
        self.assertEqual(self.ok("GET", sid, "template"), FIXTURE_ONE)

    def test_only_yaml_files_are_templates(self):
        r = self.client.post("/v1/sessions", {"user_id": "u", "type": "guided", "metadata": {"template": "x"}})
        self.assertError(r, 400, "invalid_request")
        self.assertIn("bare", r.json["error"]["message"])
        self.assertIn("fixture_one", r.json["error"]["message"])
        self.assertNotIn("ignored", r.json["error"]["message"])

    def test_empty_system_prompt_is_left_out(self):
        sid = self.create("bare", type_="guided")["id"]
        r = self.client.send(sid, "before")
        self.assertEqual(r.status, 201, r)
        meta = r.json["user_message"]["metadata"]
        self.assertEqual(meta.get("template"), "bare")
        self.assertNotIn("system_prompt", meta)
        self.ok("POST", sid, "workflow/start")
        r = self.client.send(sid, "during")
        self.assertEqual(r.status, 201, r)
        meta = r.json["user_message"]["metadata"]
        self.assertEqual((meta["system_prompt"], meta["workflow_step"]), ("step only", "only"))

    def test_single_step_next_completes(self):
        sid = self.create("bare", type_="guided")["id"]
        self.assertEqual(self.ok("POST", sid, "workflow/start")["step"], "only")
        done = self.ok("POST", sid, "workflow/next")
        self.assertEqual(done["status"], "workflow_completed")
        self.assertEqual(done["completed_steps"], ["only"])


class RestartTests(unittest.TestCase):
    def test_workflow_state_survives_a_restart(self):
        extra = session_types_yaml(TEMPLATES_DIR)
        first = Daemon(extra_providers=extra)
        second = None
        try:
            first.start()
            steps = GUIDE["code_review"]["steps"]
            sid = first.client.create_session("alice", type="templated",
                                              metadata={"template": "code_review"})["id"]
            for path in ("workflow/start", "workflow/next"):
                r = first.client.post("/v1/sessions/%s/%s" % (sid, path))
                self.assertEqual(r.status, 200, r)
            before = first.client.get("/v1/sessions/%s/workflow" % sid).json
            self.assertEqual(first.stop(), 0, first.log_tail())

            second = Daemon(workdir=first.workdir, db_path=first.db_path, extra_providers=extra)
            second.start()
            after = second.client.get("/v1/sessions/%s/workflow" % sid)
            self.assertEqual(after.status, 200, after)
            self.assertEqual(after.json, before)
            self.assertEqual((after.json["current_step"], after.json["current_step_name"]), (1, steps[1]))

            r = second.client.post("/v1/sessions/%s/workflow/next" % sid)
            self.assertEqual(r.status, 200, r)
            self.assertEqual((r.json["step"], r.json["step_index"]), (steps[2], 2))
            self.assertEqual(r.json["workflow"]["completed_steps"], steps[:2])
            self.assertEqual(r.json["workflow"]["started_at_us"], before["started_at_us"])
            self.assertEqual(second.stop(), 0, second.log_tail())
        finally:
            if second is not None:
                second.kill()
            first.cleanup()


class BadTemplateTests(unittest.TestCase):
    """A bad template folder makes the daemon refuse to start, saying where."""

    def refuse(self, files):
        """Writes `files` ({name: text}) to a fresh folder next to a copy of a
        good template, starts a daemon on it; returns its log once it exited."""
        workdir = swh_harness.make_tmpdir()
        daemon = Daemon(workdir=workdir, extra_providers=session_types_yaml(os.path.join(workdir, "tpl")))
        daemon.owns_workdir = True
        try:
            os.makedirs(os.path.join(workdir, "tpl"))
            shutil.copy(os.path.join(TEMPLATES_DIR, "interview.yaml"), os.path.join(workdir, "tpl"))
            for name, text in files.items():
                with open(os.path.join(workdir, "tpl", name), "w", encoding="utf-8") as f:
                    f.write(text)
            daemon.spawn()
            try:
                rc = daemon.wait_exit(timeout=EXIT_DEADLINE_S)
            except subprocess.TimeoutExpired:
                self.fail("the daemon kept running with a bad template\n%s" % daemon.log_tail())
            self.assertNotEqual(rc, 0, daemon.log_tail())
            return daemon.log()
        finally:
            daemon.cleanup()

    def test_unknown_step_key_names_file_line_col(self):
        text = ("name: broken\n"
                "steps:\n"
                "  - name: a\n"
                "    promt: typo\n")
        log = self.refuse({"broken.yaml": text})
        self.assertIn("broken.yaml:4:5:", log)
        self.assertIn("promt", log)

    def test_yaml_syntax_error_names_file_line_col(self):
        text = ("name: broken\n"
                "steps:\n"
                "  - name: a\n"
                "    suggested_responses: [one, two\n")
        log = self.refuse({"broken.yml": text})
        self.assertRegex(log, r"broken\.yml:\d+:\d+: invalid YAML")

    def test_wrong_type_names_file_line_col(self):
        text = ("name: broken\n"
                "system_prompt: [not, a, string]\n"
                "steps:\n"
                "  - name: a\n")
        log = self.refuse({"broken.yaml": text})
        self.assertIn("broken.yaml:2:16: expected 'system_prompt' to be a string", log)

    def test_duplicate_template_name(self):
        text = "name: interview\nsteps:\n  - name: only\n"
        log = self.refuse({"zz_copy.yaml": text})
        self.assertIn("zz_copy.yaml:1:7: duplicate template name 'interview'", log)


if __name__ == "__main__":
    unittest.main()
