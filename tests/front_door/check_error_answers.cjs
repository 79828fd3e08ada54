// The daemon's error answers as the official clients (`openai`,
// `@anthropic-ai/sdk`, unchanged) see them: a request deadline that passes
// (server.deadlines, docs/reliability.md "Deadlines") and a spent budget
// (budgets:, docs/budgets.md), on the chat completions, Responses and
// Messages doors, plain and streamed. Each must end in the error the client
// raises for the vendor's own answer (its class, its status, the daemon's
// message on it), never in a parse error or a hang; with the clients'
// default retries as well as with none: a deadline's 504 is retried a
// bounded number of times (the clients' rule for 5xx), a budget's 429 is not
// retried at all (its Retry-After is the end of the budget window, hours
// away, which the clients would otherwise sleep through).
//
// The providers `oa` (openai plugin) and `an` (anthropic plugin) stand in
// front of tools/fake_upstream, whose `slow` / `slowchunks` scenarios wait
// 60 s, far past the deadline, and record how each upstream request ended:
// `client_closed` proves the daemon aborted it.
// Env: SWH_BASE_URL, SWH_KEY, SWH_SPENT_KEY (a key whose budget is one
// token), SWH_DEADLINE_MS, FAKE_BASE_URL
// (run_front_door.py --with-upstream --keys --spent-key --deadlines MS).
'use strict';
const assert = require('node:assert/strict');
const OpenAIModule = require('openai');
const AnthropicModule = require('@anthropic-ai/sdk');
const { runChecks } = require('./run_checks.cjs');

const OpenAI = OpenAIModule.default || OpenAIModule;
const Anthropic = AnthropicModule.default || AnthropicModule;

const base = process.env.SWH_BASE_URL;
const key = process.env.SWH_KEY;
const spentKey = process.env.SWH_SPENT_KEY;
const fakeBase = process.env.FAKE_BASE_URL;
const deadlineMs = Number(process.env.SWH_DEADLINE_MS);
if (!base || !key || !spentKey || !fakeBase || !(deadlineMs > 0)) {
  console.error('SWH_BASE_URL, SWH_KEY, SWH_SPENT_KEY, SWH_DEADLINE_MS and FAKE_BASE_URL must be set '
    + '(run_front_door.py --with-upstream --keys --spent-key --deadlines MS)');
  process.exit(2);
}

const STALL = 60000; // ms the fake waits: far past the deadline
// What bounds a client call that the daemon should have ended: the
// clients' own timeout (per attempt), and for a whole call with retries a
// guard that turns a client sleeping through a Retry-After into a failure
// instead of a hung test. Neither is reached when the answers are right.
const CLIENT_TIMEOUT_MS = 10000;
const GUARD_MS = 60000;

// Every attempt a client makes, with the headers it sent, and the answer's.
let attempts = [];
const countingFetch = async (url, init) => {
  const attempt = { url: String(url), sent: new Headers(init && init.headers), got: null };
  attempts.push(attempt);
  const res = await fetch(url, init);
  attempt.got = res.headers;
  return res;
};

const openai = (apiKey, options = {}) => new OpenAI({
  baseURL: base + '/v1', apiKey, timeout: CLIENT_TIMEOUT_MS, maxRetries: 0, fetch: countingFetch, ...options });
const anthropic = (apiKey, options = {}) => new Anthropic({
  baseURL: base, apiKey, timeout: CLIENT_TIMEOUT_MS, maxRetries: 0, fetch: countingFetch, ...options });
// The client's own maxRetries (2 in both): unset, as most users leave it.
const DEFAULT_RETRIES = { maxRetries: undefined };

function marker() {
  return 'm' + Math.random().toString(16).slice(2, 14);
}

// The error `promise` rejects with (fails if it resolves or takes longer than GUARD_MS).
async function rejects(promise, what) {
  let timer;
  const guard = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: still waiting after ${GUARD_MS} ms (a hang)`)), GUARD_MS);
  });
  try {
    await Promise.race([promise, guard]);
  } catch (e) {
    if (e && String(e.message).includes('(a hang)')) throw e;
    return e;
  } finally {
    clearTimeout(timer);
  }
  assert.fail(`${what}: expected an error, got a result`);
}

// Reads a stream to its end; returns [events, the error it ended with].
async function drain(stream, what) {
  const events = [];
  const error = await rejects((async () => {
    for await (const event of stream) events.push(event);
    throw new NoError();
  })(), what);
  return [events, error instanceof NoError ? null : error];
}
class NoError extends Error {}

// The upstream requests that carried `m`, once each has ended (bounded).
async function upstream(m, count) {
  for (let i = 0; i < 200; i++) {
    const res = await fetch(fakeBase + '/__requests');
    const all = (await res.json()).requests.filter((r) => JSON.stringify(r.body).includes(m));
    if (all.length >= count && all.every((r) => r.outcome !== null)) return all;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.fail(`upstream requests with ${m}: not ${count} ended ones`);
}

async function assertAborted(m, count = 1) {
  const found = await upstream(m, count);
  assert.equal(found.length, count, `upstream requests carrying ${m}`);
  assert.deepEqual(found.map((r) => r.outcome), Array(count).fill('client_closed'), 'the daemon aborted them');
}

const chat = (content, extra = {}) => ({ model: 'oa', messages: [{ role: 'user', content }], ...extra });
const message = (content, extra = {}) => ({ model: 'an', max_tokens: 100, messages: [{ role: 'user', content }], ...extra });
const retryCounts = () => attempts.map((a) => a.sent.get('x-stainless-retry-count'));

async function main() {
  const checks = [];
  const check = (name, fn) => checks.push([name, async () => {
    attempts = [];
    await fn();
  }]);

  // ---- a deadline passes: 504 in the door's shape, or the door's last stream event

  check('openai chat.completions.create past request_ms: InternalServerError 504 with the daemon\'s message', async () => {
    const m = marker();
    const e = await rejects(openai(key).chat.completions.create(chat(`[fake:slow:${STALL}] ${m}`)), 'chat');
    assert.ok(e instanceof OpenAI.InternalServerError, String(e));
    assert.equal(e.status, 504);
    assert.equal(e.code, 'upstream_timeout');
    assert.match(e.message, /^504 /);
    assert.match(e.message, new RegExp(`${deadlineMs} ms`));
    assert.match(e.message, /server\.deadlines request_ms/);
    assert.equal(attempts.length, 1);
    await assertAborted(m);
  });

  check('openai chat.completions.create, X-Swarmhost-Timeout-Ms as a request option: its 504 names the header', async () => {
    const m = marker();
    const e = await rejects(openai(key).chat.completions.create(chat(`[fake:slow:${STALL}] ${m}`),
      { headers: { 'X-Swarmhost-Timeout-Ms': String(Math.floor(deadlineMs / 2)) } }), 'chat');
    assert.ok(e instanceof OpenAI.InternalServerError, String(e));
    assert.equal(e.status, 504);
    assert.match(e.message, /X-Swarmhost-Timeout-Ms/);
    await assertAborted(m);
  });

  check('openai chat.completions.create past request_ms, default retries: 3 attempts (the client retries 5xx), then 504', async () => {
    const m = marker();
    const e = await rejects(openai(key, DEFAULT_RETRIES).chat.completions.create(chat(`[fake:slow:${STALL}] ${m}`)), 'chat');
    assert.ok(e instanceof OpenAI.InternalServerError, String(e));
    assert.equal(e.status, 504);
    assert.match(e.message, /request_ms/);
    assert.deepEqual(retryCounts(), ['0', '1', '2']);
    await assertAborted(m, 3);
  });

  check('openai chat stream that goes quiet: the iteration throws APIError with the daemon\'s error chunk', async () => {
    const m = marker();
    const stream = await openai(key).chat.completions.create(chat(`[fake:slowchunks:${STALL}] ${m} one two`, { stream: true }));
    const [chunks, e] = await drain(stream, 'chat stream');
    assert.ok(chunks.length >= 1, 'it had streamed');
    assert.ok(e instanceof OpenAI.APIError, String(e));
    assert.equal(e.status, undefined); // in-stream: the HTTP status was 200
    assert.equal(e.code, 'upstream_timeout');
    assert.match(e.message, /stream_idle_ms/);
    await assertAborted(m);
  });

  check('openai chat stream whose upstream never answers: the same in-stream APIError, no hang', async () => {
    // The stream has begun (200) before the upstream's first byte, so its
    // idle limit ends it with the error chunk, not a 504.
    const m = marker();
    const stream = await openai(key).chat.completions.create(chat(`[fake:slow:${STALL}] ${m}`, { stream: true }));
    const [, e] = await drain(stream, 'chat stream');
    assert.ok(e instanceof OpenAI.APIError, String(e));
    assert.equal(e.status, undefined);
    assert.equal(e.code, 'upstream_timeout');
    assert.match(e.message, /stream_idle_ms/);
    assert.equal(attempts.length, 1);
    await assertAborted(m);
  });

  check('openai responses.create past request_ms: InternalServerError 504 with the daemon\'s message', async () => {
    const m = marker();
    const e = await rejects(openai(key).responses.create({ model: 'oa', input: `[fake:slow:${STALL}] ${m}` }), 'responses');
    assert.ok(e instanceof OpenAI.InternalServerError, String(e));
    assert.equal(e.status, 504);
    assert.equal(e.code, 'upstream_timeout');
    assert.match(e.message, /request_ms/);
    await assertAborted(m);
  });

  check('openai responses stream that goes quiet: ends with response.failed holding the error', async () => {
    const m = marker();
    const stream = await openai(key).responses.create({ model: 'oa', stream: true, input: `[fake:slowchunks:${STALL}] ${m} one two` });
    const [events, e] = await drain(stream, 'responses stream');
    assert.equal(e, null, 'the client does not throw on response.failed: it is an event like the vendor\'s');
    const types = events.map((ev) => ev.type);
    assert.equal(types[0], 'response.created', types);
    assert.equal(types.at(-1), 'response.failed', types);
    const failed = events.at(-1).response;
    assert.equal(failed.status, 'failed');
    assert.equal(failed.id, events[0].response.id);
    assert.equal(failed.error.code, 'upstream_timeout');
    assert.match(failed.error.message, /stream_idle_ms/);
    await assertAborted(m);
  });

  check('anthropic messages.create past request_ms: InternalServerError 504, type timeout_error', async () => {
    const m = marker();
    const e = await rejects(anthropic(key).messages.create(message(`[fake:slow:${STALL}] ${m}`)), 'messages');
    assert.ok(e instanceof Anthropic.InternalServerError, String(e));
    assert.equal(e.status, 504);
    assert.equal(e.type, 'timeout_error');
    assert.match(e.apiMessage, /server\.deadlines request_ms/);
    assert.equal(attempts.length, 1);
    await assertAborted(m);
  });

  check('anthropic messages.create past request_ms, default retries: 3 attempts, then 504', async () => {
    const m = marker();
    const e = await rejects(anthropic(key, DEFAULT_RETRIES).messages.create(message(`[fake:slow:${STALL}] ${m}`)), 'messages');
    assert.ok(e instanceof Anthropic.InternalServerError, String(e));
    assert.equal(e.status, 504);
    assert.equal(e.type, 'timeout_error');
    assert.deepEqual(retryCounts(), ['0', '1', '2']);
    await assertAborted(m, 3);
  });

  check('anthropic stream that goes quiet: the iteration throws APIError from event: error', async () => {
    const m = marker();
    const stream = await anthropic(key).messages.create(message(`[fake:slowchunks:${STALL}] ${m} one two`, { stream: true }));
    const [events, e] = await drain(stream, 'messages stream');
    assert.equal(events[0].type, 'message_start');
    assert.ok(e instanceof Anthropic.APIError, String(e));
    assert.equal(e.type, 'timeout_error');
    assert.match(e.apiMessage, /stream_idle_ms/);
    await assertAborted(m);
  });

  check('anthropic messages.stream helper that goes quiet: finalMessage() rejects with the same APIError', async () => {
    const m = marker();
    const stream = anthropic(key).messages.stream(message(`[fake:slowchunks:${STALL}] ${m} one two`));
    const e = await rejects(stream.finalMessage(), 'messages.stream');
    assert.ok(e instanceof Anthropic.APIError, String(e));
    assert.equal(e.type, 'timeout_error');
    assert.match(e.apiMessage, /stream_idle_ms/);
    await assertAborted(m);
  });

  // ---- a spent budget: 429 RateLimitError, and no retry

  check('spend the one-token budget of the spent key', async () => {
    const r = await openai(spentKey).chat.completions.create({ model: 'echo', messages: [{ role: 'user', content: 'spend' }] });
    assert.ok(r.usage.total_tokens >= 1, JSON.stringify(r.usage));
  });

  const assertBudgetAnswer = (e, what) => {
    assert.equal(e.status, 429, what);
    assert.ok(attempts.length === 1, `${what}: ${attempts.length} attempts, the refusal was retried`);
    const got = attempts[0].got;
    assert.ok(Number(got.get('retry-after')) > 0, `${what}: retry-after ${got.get('retry-after')}`);
    assert.equal(got.get('x-should-retry'), 'false', `${what}: the clients would retry (after retry-after)`);
  };

  for (const [label, options] of [['maxRetries 0', {}], ['default retries', DEFAULT_RETRIES]]) {
    check(`openai chat.completions.create, budget spent (${label}): RateLimitError 429 at once`, async () => {
      const e = await rejects(openai(spentKey, options).chat.completions.create(chat('more', { model: 'echo' })), 'chat');
      assert.ok(e instanceof OpenAI.RateLimitError, String(e));
      assert.equal(e.code, 'budget_exceeded');
      assert.match(e.message, /^429 .*budget/);
      assertBudgetAnswer(e, 'chat');
    });

    check(`openai chat stream, budget spent (${label}): RateLimitError from create`, async () => {
      const e = await rejects(openai(spentKey, options).chat.completions.create(chat('more', { model: 'echo', stream: true })), 'chat stream');
      assert.ok(e instanceof OpenAI.RateLimitError, String(e));
      assert.equal(e.code, 'budget_exceeded');
      assertBudgetAnswer(e, 'chat stream');
    });

    check(`openai responses.create plain and stream, budget spent (${label}): RateLimitError`, async () => {
      for (const stream of [false, true]) {
        attempts = [];
        const e = await rejects(openai(spentKey, options).responses.create({ model: 'echo', input: 'more', stream }), 'responses');
        assert.ok(e instanceof OpenAI.RateLimitError, String(e));
        assert.equal(e.code, 'budget_exceeded');
        assert.match(e.message, /budget/);
        assertBudgetAnswer(e, `responses stream=${stream}`);
      }
    });

    check(`anthropic messages.create plain and stream, budget spent (${label}): RateLimitError`, async () => {
      for (const stream of [false, true]) {
        attempts = [];
        const e = await rejects(anthropic(spentKey, options).messages.create(
          { model: 'echo', max_tokens: 100, messages: [{ role: 'user', content: 'more' }], stream }), 'messages');
        assert.ok(e instanceof Anthropic.RateLimitError, String(e));
        assert.equal(e.error.type, 'error');
        assert.match(e.apiMessage, /budget/);
        assertBudgetAnswer(e, `messages stream=${stream}`);
      }
    });
  }

  check('anthropic messages.stream helper, budget spent: finalMessage() rejects with RateLimitError', async () => {
    const e = await rejects(anthropic(spentKey, DEFAULT_RETRIES).messages.stream(
      { model: 'echo', max_tokens: 100, messages: [{ role: 'user', content: 'more' }] }).finalMessage(), 'messages.stream');
    assert.ok(e instanceof Anthropic.RateLimitError, String(e));
    assertBudgetAnswer(e, 'messages.stream');
  });

  await runChecks(checks, 'error answers through the official clients');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
