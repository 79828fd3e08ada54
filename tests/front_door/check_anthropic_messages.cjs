// The official `@anthropic-ai/sdk` client against the daemon's Anthropic
// door (POST /v1/messages), unchanged client code: messages.create and the
// messages.stream helper, a full tool loop with the echo provider's
// deterministic tool calls (plugins/provider_echo/README.md) plain and
// streamed, the client's error classes for a missing max_tokens, a bad key
// and a failure after the stream began, the key sent each way the client
// sends it, and one create + stream through the openai provider plugin
// against tools/fake_upstream (any door to any provider); a Claude Code
// shaped request (cache marks, metadata.user_id, streamed) and a stop
// sequence through the anthropic plugin against the same fake.
// Env: SWH_BASE_URL, SWH_KEY (a key of the daemon), FAKE_BASE_URL.
'use strict';
const assert = require('node:assert/strict');
const AnthropicModule = require('@anthropic-ai/sdk');
const Anthropic = AnthropicModule.default || AnthropicModule;
// rejects(): the fake-upstream checks' helper (it reads FAKE_BASE_URL, set here too).
const { rejects } = require('../upstream_fake/common.cjs');

const base = process.env.SWH_BASE_URL; // the SDK adds /v1/messages itself
const key = process.env.SWH_KEY;
const fakeBase = process.env.FAKE_BASE_URL;
const FAIL_TOKEN = '__swh_fail_now__'; // the echo provider's fail_on in the test manifest
if (!base || !key || !fakeBase) {
  console.error('SWH_BASE_URL, SWH_KEY and FAKE_BASE_URL must be set (run_front_door.py --with-upstream --keys)');
  process.exit(2);
}

// Every request's headers, as the client sent them.
const sent = [];
const recordingFetch = (url, init) => {
  sent.push(new Headers(init && init.headers));
  return fetch(url, init);
};
const make = (options) => new Anthropic({ baseURL: base, maxRetries: 0, timeout: 20000, fetch: recordingFetch, ...options });
const client = make({ apiKey: key });

const weather = {
  name: 'get_weather',
  description: 'weather of a city',
  input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};
const ask = 'what does get_weather say for Oslo';
const params = (messages, extra = {}) => ({ model: 'echo', max_tokens: 256, messages, ...extra });

async function main() {
  const checks = [];
  const check = (name, fn) => checks.push([name, fn]);

  check('messages.create: a message in Anthropic shape', async () => {
    const m = await client.messages.create(params([{ role: 'user', content: 'hello there' }], { system: 'be brief' }));
    assert.match(m.id, /^msg_/);
    assert.equal(m.type, 'message');
    assert.equal(m.role, 'assistant');
    assert.equal(m.model, 'echo');
    assert.deepEqual(m.content, [{ type: 'text', text: 'echo#1 hello there', citations: null }]);
    assert.equal(m.stop_reason, 'end_turn');
    assert.equal(m.stop_sequence, null);
    assert.deepEqual([m.usage.input_tokens, m.usage.output_tokens], [2, 3]);
  });

  check('messages.stream: text events and finalMessage', async () => {
    const stream = client.messages.stream(params([{ role: 'user', content: 'stream these words please' }]));
    const pieces = [];
    stream.on('text', (t) => pieces.push(t));
    const final = await stream.finalMessage();
    assert.ok(pieces.length > 1, `one text event per piece: ${JSON.stringify(pieces)}`);
    assert.equal(pieces.join(''), 'echo#1 stream these words please');
    assert.equal(final.content.length, 1);
    assert.equal(final.content[0].text, 'echo#1 stream these words please');
    assert.equal(final.stop_reason, 'end_turn');
    assert.deepEqual([final.usage.input_tokens, final.usage.output_tokens], [4, 5]);
  });

  check('tool loop, plain: tool_use, tool_result, answer', async () => {
    const messages = [{ role: 'user', content: ask }];
    const first = await client.messages.create(params(messages, { tools: [weather] }));
    assert.equal(first.stop_reason, 'tool_use');
    const call = first.content.find((b) => b.type === 'tool_use');
    assert.equal(call.id, 'call_echo_1');
    assert.equal(call.name, 'get_weather');
    assert.deepEqual(call.input, { city: ask });
    messages.push({ role: 'assistant', content: first.content },
                  { role: 'user', content: [{ type: 'tool_result', tool_use_id: call.id, content: 'sunny, 21 C' }] });
    const second = await client.messages.create(params(messages, { tools: [weather] }));
    assert.equal(second.content[0].text, 'get_weather returned: sunny, 21 C');
    assert.equal(second.stop_reason, 'end_turn');
  });

  check('tool loop, streamed: input_json_delta accumulates into the tool_use input', async () => {
    const messages = [{ role: 'user', content: ask }];
    const stream = client.messages.stream(params(messages, { tools: [weather] }));
    const fragments = [];
    stream.on('inputJson', (partial) => fragments.push(partial));
    const first = await stream.finalMessage();
    const call = first.content.find((b) => b.type === 'tool_use');
    assert.equal(first.stop_reason, 'tool_use');
    assert.equal(call.name, 'get_weather');
    assert.deepEqual(call.input, { city: ask });
    assert.equal(fragments.length, 2, `echo streams the arguments in two fragments: ${JSON.stringify(fragments)}`);
    assert.deepEqual(JSON.parse(fragments.join('')), { city: ask });
    messages.push({ role: 'assistant', content: first.content },
                  { role: 'user', content: [{ type: 'tool_result', tool_use_id: call.id, content: [{ type: 'text', text: 'rain' }] }] });
    const answer = client.messages.stream(params(messages, { tools: [weather] }));
    const text = await answer.finalText();
    assert.equal(text, 'get_weather returned: rain');
  });

  check('a missing max_tokens is the client\'s BadRequestError, as Anthropic answers it', async () => {
    const e = await rejects(client.messages.create({ model: 'echo', messages: [{ role: 'user', content: 'hi' }] }),
      'no max_tokens');
    assert.ok(e instanceof Anthropic.BadRequestError, String(e));
    assert.equal(e.status, 400);
    assert.deepEqual(e.error, { type: 'error', error: { type: 'invalid_request_error', message: 'max_tokens: Field required' } });
  });

  check('a failure after the stream began is the client\'s APIError from the error event', async () => {
    const stream = client.messages.stream(params([{ role: 'user', content: `one two three ${FAIL_TOKEN}` }]));
    const e = await rejects(stream.finalMessage(), 'failing stream');
    assert.ok(e instanceof Anthropic.APIError, String(e));
    assert.equal(e.error.error.type, 'api_error');
  });

  check('a bad key is the client\'s AuthenticationError', async () => {
    const e = await rejects(make({ apiKey: 'swhk-not-a-key' }).messages.create(params([{ role: 'user', content: 'hi' }])),
      'bad key');
    assert.ok(e instanceof Anthropic.AuthenticationError, String(e));
    assert.equal(e.status, 401);
    assert.equal(e.error.error.type, 'authentication_error');
  });

  check('the key each way the client sends it: apiKey and authToken as Bearer, an x-api-key header', async () => {
    const ways = [
      ['apiKey', make({ apiKey: key }), (h) => h.get('authorization') === `Bearer ${key}`],
      ['authToken', make({ authToken: key }), (h) => h.get('authorization') === `Bearer ${key}`],
      ['x-api-key', make({ apiKey: null, authToken: null, defaultHeaders: { 'x-api-key': key } }),
       (h) => h.get('x-api-key') === key && !h.has('authorization')],
    ];
    for (const [name, c, how] of ways) {
      sent.length = 0;
      const m = await c.messages.create(params([{ role: 'user', content: name }]));
      assert.equal(m.content[0].text, `echo#1 ${name}`);
      assert.equal(sent.length, 1);
      assert.ok(how(sent[0]), `${name}: ${JSON.stringify([...sent[0].entries()].filter(([k]) => k !== 'x-stainless-os'))}`);
      assert.ok(sent[0].get('anthropic-version'), `${name}: the client sends anthropic-version`);
    }
  });

  check('any door to any provider: create and stream through the openai plugin', async () => {
    await fetch(fakeBase + '/__requests', { method: 'DELETE' });
    const m = await client.messages.create({ model: 'oa', max_tokens: 100, messages: [{ role: 'user', content: 'via openai' }] });
    assert.equal(m.content[0].text, 'You said: via openai');
    assert.equal(m.stop_reason, 'end_turn');
    assert.equal(m.model, 'oa');
    assert.ok(m.usage.input_tokens > 0 && m.usage.output_tokens > 0, JSON.stringify(m.usage));
    const stream = client.messages.stream({ model: 'oa', max_tokens: 100, messages: [{ role: 'user', content: 'streamed via openai' }] });
    const final = await stream.finalMessage();
    assert.equal(final.content[0].text, 'You said: streamed via openai');
    assert.ok(final.usage.output_tokens > 0, JSON.stringify(final.usage));
    const { requests } = await (await fetch(fakeBase + '/__requests')).json();
    assert.deepEqual(requests.map((r) => [r.path, !!r.body.stream]),
                     [['/v1/chat/completions', false], ['/v1/chat/completions', true]]);
    assert.deepEqual(requests[0].body.messages, [{ role: 'user', content: 'via openai' }]);
  });

  // What Claude Code sends: marked system blocks and tools, metadata.user_id,
  // the last block of the conversation marked, streamed. Through the
  // anthropic plugin the marks reach the (fake) upstream where they were.
  check('a Claude Code shaped request: cache marks, metadata.user_id, streamed, to the anthropic plugin', async () => {
    await fetch(fakeBase + '/__requests', { method: 'DELETE' });
    const mark = { type: 'ephemeral' };
    const stream = client.messages.stream({
      model: 'an', max_tokens: 200, metadata: { user_id: 'user_abc_account_1_session_2' },
      system: [{ type: 'text', text: 'You are Claude Code.', cache_control: mark },
               { type: 'text', text: ' Answer briefly.', cache_control: mark }],
      tools: [{ ...weather, cache_control: mark }],
      messages: [{ role: 'user', content: [{ type: 'text', text: '<system-reminder>ctx</system-reminder>' },
                                           { type: 'text', text: 'hello', cache_control: mark }] }],
    });
    const final = await stream.finalMessage();
    assert.equal(final.content.at(-1).type, 'tool_use'); // the fake calls the offered tool
    assert.equal(final.stop_reason, 'tool_use');
    const { requests } = await (await fetch(fakeBase + '/__requests')).json();
    assert.equal(requests.length, 1);
    const body = requests[0].body;
    assert.equal(requests[0].path, '/v1/messages');
    assert.equal(body.stream, true);
    assert.deepEqual(body.system, [{ type: 'text', text: 'You are Claude Code. Answer briefly.', cache_control: mark }]);
    assert.deepEqual(body.tools, [{ ...weather, cache_control: mark }]);
    assert.deepEqual(body.messages, [{ role: 'user', content: [
      { type: 'text', text: '<system-reminder>ctx</system-reminder>' },
      { type: 'text', text: 'hello', cache_control: mark }] }]);
    assert.deepEqual(body.metadata, { user_id: 'user_abc_account_1_session_2' });
  });

  check('stop_sequence: the matched sequence comes back, create and stream', async () => {
    const ask = { model: 'an', max_tokens: 100, stop_sequences: ['absent', 'two'],
                  messages: [{ role: 'user', content: 'one two three' }] };
    const m = await client.messages.create(ask);
    assert.deepEqual([m.content[0].text, m.stop_reason, m.stop_sequence], ['You said: one ', 'stop_sequence', 'two']);
    const final = await client.messages.stream(ask).finalMessage();
    assert.deepEqual([final.content[0].text, final.stop_reason, final.stop_sequence],
                     ['You said: one ', 'stop_sequence', 'two']);
  });

  check('models.list and models.retrieve: Anthropic\'s model objects', async () => {
    const ids = [];
    for await (const m of client.models.list()) {
      assert.equal(m.type, 'model');
      assert.equal(typeof m.display_name, 'string');
      assert.equal(m.created_at, '1970-01-01T00:00:00Z');
      ids.push(m.id);
    }
    for (const id of ['echo', 'oa', 'an']) assert.ok(ids.includes(id), JSON.stringify(ids));
    const an = await client.models.retrieve('an');
    assert.deepEqual([an.type, an.id], ['model', 'an']);
    await assert.rejects(client.models.retrieve('no-such-model'), Anthropic.NotFoundError);
  });

  for (const [name, fn] of checks) {
    try {
      await fn();
      console.log('ok   ' + name);
    } catch (e) {
      console.log('FAIL ' + name + ': ' + ((e && e.stack) || e));
      process.exit(1);
    }
  }
  console.log(`@anthropic-ai/sdk vs the Anthropic door: ${checks.length} passed, 0 failed`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
