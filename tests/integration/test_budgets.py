"""Token and cost budgets (manifest `budgets:`, docs/budgets.md) through the
real daemon, in front of tools/fake_upstream, which counts the upstream calls
and reports usage (a word is a token):

- a key's token budget lets requests through until it is spent, then every
  request gets 429 `budget_exceeded` with the budget and the spend, and the
  provider is not called (OpenAI chat-compat door);
- a session's budget refuses in that session while another session of the
  same user still works (native door); the session's spend is on
  GET /v1/sessions/{id}/budget, for its owner only;
- a user's budget holds across two keys of that user (Anthropic door, whose
  error shape it keeps);
- prices turn tokens into cost, and a cost budget refuses (Responses door);
- a stream is checked before it starts and charged at its end;
- GET /v1/budgets: a user key sees its own key and user, an admin everyone;
  /metrics counts tokens, cost and refusals per scope;
- a reload brings new budgets (the spend stays).

Budgets shared by two daemons on one PostgreSQL: tests/conformance/test_fleet_limits.py."""

import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "auth"))
sys.path.insert(0, os.path.join(HERE, "..", "pipeline"))

import swh_harness  # noqa: E402
from auth_fixture import Key, auth_section  # noqa: E402
from pipeline_support import parse_prometheus, sample  # noqa: E402

ADMIN = Key("admin", "root", role="admin")
KTOK = Key("ktok", "kate")  # key budget: tokens
SESS = Key("sess", "sam")  # session budgets (sessions: default)
U1 = Key("u1", "ursula")  # two keys of one user with a user budget
U2 = Key("u2", "ursula")
KCOST = Key("kcost", "carl")  # key budget: cost
KSTREAM = Key("kstream", "stan")
KRELOAD = Key("kreload", "rita")

KEY_TOKENS = 20
SESSION_TOKENS = 12
USER_TOKENS = 16
COST_USD = 0.00003
PRICE_IN, PRICE_OUT = 2.0, 3.0  # USD per million tokens = micro-dollars per token
ATTEMPTS_CAP = 30  # bound of every spend-until-refused loop


def budgets_block(reload_tokens=1):
    return ("budgets:\n"
            "  window: day\n"
            "  prices:\n"
            "    gpt-4o-mini: { input_per_mtok: %s, output_per_mtok: %s }\n"
            "  keys:\n"
            "    ktok: { tokens: %d }\n"
            "    kcost: { cost_usd: %s }\n"
            "    kstream: { tokens: 1 }\n"
            "    kreload: { tokens: %d }\n"
            "  users:\n"
            "    ursula: { tokens: %d }\n"
            "  sessions:\n"
            "    default: { tokens: %d }\n"
            % (PRICE_IN, PRICE_OUT, KEY_TOKENS, COST_USD, reload_tokens, USER_TOKENS, SESSION_TOKENS))


def chat(content, **fields):
    body = {"model": "oa", "messages": [{"role": "user", "content": content}]}
    body.update(fields)
    return body


class BudgetTests(swh_harness.FakeUpstreamTestCase):

    @classmethod
    def manifest_kw_for(cls, fake_base):
        provider = ("  - name: oa\n    plugin: openai\n    config:\n"
                    "      base_url: %s\n      api_key_env: \"\"\n      retries: 0\n"
                    "      model: gpt-4o-mini\n" % swh_harness.yaml_str(fake_base + "/v1"))
        return {"extra_providers": provider + auth_section([ADMIN, KTOK, SESS, U1, U2, KCOST, KSTREAM, KRELOAD])
                + budgets_block()}

    # ---- helpers
    def call(self, key, method, path, body=None, headers=None):
        h = dict(key.bearer())
        h.update(headers or {})
        return self.client.request(method, path, body=body, headers=h)

    def upstream_calls(self):
        with self.fake.state.lock:
            return len([r for r in self.fake.state.requests if r["path"].endswith("/chat/completions")])

    def metrics(self):
        r = self.call(ADMIN, "GET", "/metrics")
        self.assertEqual(r.status, 200, r)
        return parse_prometheus(r.body.decode("utf-8"))

    def spend_until_refused(self, send, usage_of):
        """Calls send() until it is refused; returns (usages of the answered ones, the refusal)."""
        usages = []
        for _ in range(ATTEMPTS_CAP):
            r = send()
            if r.status == 429:
                return usages, r
            self.assertIn(r.status, (200, 201), r)
            usages.append(usage_of(r))
        self.fail("no refusal after %d requests" % ATTEMPTS_CAP)

    def assertRefusal(self, r, scope, name, budget, spent_tokens, error_of=lambda j: j["error"]):
        self.assertEqual(r.status, 429, r)
        error = error_of(r.json)
        self.assertEqual(error["type"], "budget_exceeded", r)
        self.assertEqual(error["scope"], scope, r)
        self.assertEqual(error["name"], name, r)
        self.assertEqual(error["budget"], budget, r)
        self.assertEqual(error["spent"]["tokens"], spent_tokens, r)
        self.assertIn("budget", error["message"], r)
        # window: day -> until the next UTC midnight
        self.assertTrue(0 < int(r.headers["retry-after"]) <= 86400, r.headers)
        # Hours away: the official clients must raise, not sleep it out and retry.
        self.assertEqual(r.headers.get("x-should-retry"), "false", r.headers)
        return error

    # ---- a key's budget, OpenAI chat-compat door
    def test_a_key_budget_refuses_once_spent_and_the_provider_is_not_called(self):
        before = self.metrics()
        usages, refusal = self.spend_until_refused(
            lambda: self.call(KTOK, "POST", "/v1/chat/completions", chat("hello there")),
            lambda r: r.json["usage"]["total_tokens"])
        self.assertGreater(len(usages), 1, "a budget of %d tokens lets more than one exchange through" % KEY_TOKENS)
        spent = sum(usages)
        self.assertGreaterEqual(spent, KEY_TOKENS)
        self.assertLess(spent - usages[-1], KEY_TOKENS, "the last one answered started under the budget")
        self.assertRefusal(refusal, "key", "ktok", {"tokens": KEY_TOKENS}, spent)
        self.assertEqual(refusal.json["error"]["code"], "budget_exceeded")
        self.assertEqual(self.upstream_calls(), len(usages), "the refused request reached the provider")
        # Refused again, and still nothing goes upstream.
        self.assertEqual(self.call(KTOK, "POST", "/v1/chat/completions", chat("again")).status, 429)
        self.assertEqual(self.upstream_calls(), len(usages))
        # Another key is not affected.
        admin = self.call(ADMIN, "POST", "/v1/chat/completions", chat("admin"))
        self.assertEqual(admin.status, 200, admin)
        # The API and /metrics show it.
        mine = self.call(KTOK, "GET", "/v1/budgets")
        self.assertEqual(mine.status, 200, mine)
        by_scope = {(b["scope"], b["name"]): b for b in mine.json["budgets"]}
        self.assertEqual(set(by_scope), {("key", "ktok"), ("user", "kate")}, mine)
        self.assertEqual(by_scope[("key", "ktok")]["spent"]["tokens"], spent)
        self.assertEqual(by_scope[("key", "ktok")]["budget"], {"tokens": KEY_TOKENS})
        self.assertIsNone(by_scope[("user", "kate")]["budget"])
        after = self.metrics()
        delta = lambda name, scope: (sample(after, name, scope=scope) or 0) - (sample(before, name, scope=scope) or 0)
        self.assertEqual(delta("swarmhost_budget_refused_total", "key"), 2)
        self.assertEqual(delta("swarmhost_budget_tokens_total", "key"), spent + admin.json["usage"]["total_tokens"])

    # ---- a session's budget, native door
    def test_a_session_budget_refuses_in_that_session_only(self):
        a = self.call(SESS, "POST", "/v1/sessions", {"provider": "oa"}).json["id"]
        b = self.call(SESS, "POST", "/v1/sessions", {"provider": "oa"}).json["id"]

        def tokens(r):
            usage = r.json["assistant_message"]["provider_metadata"]["usage"]
            return (usage.get("input_tokens", usage.get("prompt_tokens"))
                    + usage.get("output_tokens", usage.get("completion_tokens")))
        usages, refusal = self.spend_until_refused(
            lambda: self.call(SESS, "POST", "/v1/sessions/%s/messages" % a, {"content": "hi"}), tokens)
        self.assertGreater(len(usages), 1)
        self.assertRefusal(refusal, "session", a, {"tokens": SESSION_TOKENS}, sum(usages))
        calls = self.upstream_calls()
        # The refused message was not stored either.
        stored = self.call(SESS, "GET", "/v1/sessions/%s/messages" % a).json["messages"]
        self.assertEqual(len(stored), 2 * len(usages))
        # The other session of the same user and key still works.
        r = self.call(SESS, "POST", "/v1/sessions/%s/messages" % b, {"content": "hi"})
        self.assertEqual(r.status, 201, r)
        self.assertEqual(self.upstream_calls(), calls + 1)
        # The session's spend, for its owner; another user's key gets 404.
        own = self.call(SESS, "GET", "/v1/sessions/%s/budget" % a)
        self.assertEqual(own.status, 200, own)
        self.assertEqual(own.json["spent"]["tokens"], sum(usages))
        self.assertEqual(own.json["budget"], {"tokens": SESSION_TOKENS})
        self.assertEqual(own.json["window"], "day")
        self.assertEqual(self.call(KTOK, "GET", "/v1/sessions/%s/budget" % a).status, 404)

    # ---- a user's budget across two keys, Anthropic door
    def test_a_user_budget_holds_across_the_users_keys(self):
        msg = {"model": "oa", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}
        usage = lambda r: r.json["usage"]["input_tokens"] + r.json["usage"]["output_tokens"]
        usages, refusal = self.spend_until_refused(lambda: self.call(U1, "POST", "/v1/messages", msg), usage)
        self.assertGreater(len(usages), 1)
        # Anthropic's shape: {"type": "error", "error": {...}} with the budget in it.
        self.assertEqual(refusal.json["type"], "error", refusal)
        self.assertRefusal(refusal, "user", "ursula", {"tokens": USER_TOKENS}, sum(usages))
        calls = self.upstream_calls()
        other_key = self.call(U2, "POST", "/v1/messages", msg)
        self.assertRefusal(other_key, "user", "ursula", {"tokens": USER_TOKENS}, sum(usages))
        self.assertEqual(self.upstream_calls(), calls)
        self.assertEqual(self.call(ADMIN, "POST", "/v1/messages", msg).status, 200)

    # ---- prices and a cost budget, Responses door
    def test_prices_turn_tokens_into_cost_and_a_cost_budget_refuses(self):
        costs = []

        def cost(r):
            usage = r.json["usage"]
            costs.append(usage["input_tokens"] * PRICE_IN + usage["output_tokens"] * PRICE_OUT)
            return usage["input_tokens"] + usage["output_tokens"]
        usages, refusal = self.spend_until_refused(
            lambda: self.call(KCOST, "POST", "/v1/responses", {"model": "oa", "input": "hi"}), cost)
        self.assertGreater(len(usages), 1)
        self.assertEqual(refusal.status, 429, refusal)
        error = refusal.json["error"]  # OpenAI's shape, with the budget's members
        self.assertEqual(error["type"], "budget_exceeded")
        self.assertEqual(error["budget"], {"cost_usd": COST_USD})
        self.assertEqual(refusal.headers.get("x-should-retry"), "false", refusal.headers)
        micro = sum(costs)
        self.assertAlmostEqual(error["spent"]["cost_usd"], micro / 1e6, places=9)
        self.assertGreaterEqual(micro / 1e6, COST_USD)
        self.assertLess((micro - costs[-1]) / 1e6, COST_USD)
        self.assertEqual(self.upstream_calls(), len(usages))
        m = self.metrics()
        self.assertGreaterEqual(sample(m, "swarmhost_budget_cost_usd_total", scope="key"), micro / 1e6 - 1e-9)

    # ---- streams: checked before, charged at the end
    def test_a_stream_is_charged_at_its_end_and_the_next_is_refused_before_it_starts(self):
        st = self.client.stream("/v1/chat/completions", chat("stream me", stream=True), headers=KSTREAM.bearer())
        self.assertIsInstance(st, swh_harness.SSEStream, st)
        st.read_all()
        self.assertTrue(st.ended_cleanly)
        calls = self.upstream_calls()
        self.assertEqual(calls, 1)
        refused = self.client.stream("/v1/chat/completions", chat("again", stream=True), headers=KSTREAM.bearer())
        self.assertNotIsInstance(refused, swh_harness.SSEStream, "refused after the stream started")
        self.assertEqual(refused.status, 429, refused)
        self.assertEqual(refused.json["error"]["type"], "budget_exceeded")
        self.assertGreater(refused.json["error"]["spent"]["tokens"], 0)
        self.assertEqual(self.upstream_calls(), calls)

    # ---- who sees what
    def test_an_admin_sees_every_budget(self):
        self.assertEqual(self.call(SESS, "POST", "/v1/chat/completions", chat("seen")).status, 200)
        r = self.call(ADMIN, "GET", "/v1/budgets")
        self.assertEqual(r.status, 200, r)
        names = {(b["scope"], b["name"]) for b in r.json["budgets"]}
        # Named in the manifest, or charged here.
        for expected in [("key", "ktok"), ("key", "kcost"), ("user", "ursula"), ("key", "sess"), ("user", "sam")]:
            self.assertIn(expected, names)
        self.assertEqual(r.json["window"], "day")

    # ---- reload
    def test_a_reload_brings_new_budgets(self):
        self.assertEqual(self.call(KRELOAD, "POST", "/v1/chat/completions", chat("one")).status, 200)
        self.assertEqual(self.call(KRELOAD, "POST", "/v1/chat/completions", chat("two")).status, 429)
        with open(self.daemon.manifest_path, encoding="utf-8") as f:
            text = f.read()
        self.assertIn(budgets_block(1), text)
        with open(self.daemon.manifest_path, "w", encoding="utf-8") as f:
            f.write(text.replace(budgets_block(1), budgets_block(1000000)))
        r = self.call(ADMIN, "POST", "/v1/admin/reload")
        self.assertEqual(r.status, 200, r)
        ok = self.call(KRELOAD, "POST", "/v1/chat/completions", chat("three"))
        self.assertEqual(ok.status, 200, ok)
        spent = {(b["scope"], b["name"]): b for b in self.call(KRELOAD, "GET", "/v1/budgets").json["budgets"]}
        self.assertEqual(spent[("key", "kreload")]["budget"], {"tokens": 1000000})
        self.assertGreater(spent[("key", "kreload")]["spent"]["tokens"], 1)  # both answers, kept over the reload


if __name__ == "__main__":
    unittest.main()
