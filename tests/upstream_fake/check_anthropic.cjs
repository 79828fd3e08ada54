// The official `@anthropic-ai/sdk` npm client against tools/fake_upstream.
'use strict';
const { assert, base, recorded, run, rejects, PNG, PDF, saw } = require('./common.cjs');
const AnthropicModule = require('@anthropic-ai/sdk');
const Anthropic = AnthropicModule.default || AnthropicModule;

const KEY = 'sk-ant-fake-key-0123456789';
// The SDK appends /v1/messages itself: baseURL has no /v1.
const client = new Anthropic({ apiKey: KEY, baseURL: base, maxRetries: 0, timeout: 20000 });
const WEATHER = { name: 'get_weather', description: 'Weather of a city',
  input_schema: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] } };
const params = (text, extra = {}) => ({
  model: 'claude-3-5-haiku-latest', max_tokens: 256, system: 'be brief',
  messages: [{ role: 'user', content: text }], ...extra,
});

run('anthropic', [
  ['non-stream message parses: text, stop_reason, usage, id', async () => {
    const m = await client.messages.create(params('hello there'));
    assert.equal(m.type, 'message');
    assert.equal(m.role, 'assistant');
    assert.match(m.id, /^msg_/);
    assert.equal(m.content.length, 1);
    assert.equal(m.content[0].type, 'text');
    assert.equal(m.content[0].text, 'You said: hello there');
    assert.equal(m.stop_reason, 'end_turn');
    assert.deepEqual([m.usage.input_tokens, m.usage.output_tokens], [4, 4]);
    const [req] = await recorded();
    assert.equal(req.path, '/v1/messages');
    assert.ok(req.headers['anthropic-version'], 'no anthropic-version header');
    const key = req.headers['x-api-key'] || (req.headers['authorization'] || '').replace(/^Bearer /, '');
    assert.equal(key, KEY);
    assert.equal(req.body.system, 'be brief');
  }],
  ['max_tokens cuts the reply: stop_reason max_tokens', async () => {
    const m = await client.messages.create(params('a b c d', { max_tokens: 2 }));
    assert.equal(m.content[0].text, 'You said: ');
    assert.equal(m.stop_reason, 'max_tokens');
  }],
  ['stop_sequences: stop_reason stop_sequence names the one matched, streamed or not', async () => {
    const ask = params('one two three four', { stop_sequences: ['four', 'two', 'absent'] });
    const m = await client.messages.create(ask);
    assert.equal(m.content[0].text, 'You said: one ');
    assert.equal(m.stop_reason, 'stop_sequence');
    assert.equal(m.stop_sequence, 'two');
    assert.equal(m.usage.output_tokens, 3);
    const final = await client.messages.stream(ask).finalMessage();
    assert.equal(final.content[0].text, 'You said: one ');
    assert.deepEqual([final.stop_reason, final.stop_sequence], ['stop_sequence', 'two']);
    const none = await client.messages.create(params('one', { stop_sequences: ['absent'] }));
    assert.deepEqual([none.stop_reason, none.stop_sequence], ['end_turn', null]);
  }],
  ['raw stream: the documented event sequence', async () => {
    const stream = await client.messages.create(params('stream me please', { stream: true }));
    const types = [];
    let text = '', stop = null, out = null, id = null;
    for await (const ev of stream) {
      types.push(ev.type);
      if (ev.type === 'message_start') id = ev.message.id;
      if (ev.type === 'content_block_delta' && ev.delta.type === 'text_delta') text += ev.delta.text;
      if (ev.type === 'message_delta') { stop = ev.delta.stop_reason; out = ev.usage.output_tokens; }
    }
    assert.equal(text, 'You said: stream me please');
    assert.equal(stop, 'end_turn');
    assert.equal(out, 5);
    assert.match(id, /^msg_/);
    assert.equal(types[0], 'message_start');
    assert.equal(types[1], 'content_block_start');
    assert.deepEqual(types.slice(-3), ['content_block_stop', 'message_delta', 'message_stop']);
  }],
  ['tools, non-stream: text and tool_use blocks parse; tool results in one user message get text', async () => {
    const tools = [WEATHER, { name: 'get_time', input_schema: { type: 'object' } }];
    const m = await client.messages.create(params('Oslo', { tools }));
    assert.equal(m.stop_reason, 'tool_use');
    assert.deepEqual(m.content.map((b) => b.type), ['text', 'tool_use', 'tool_use']);
    assert.deepEqual(m.content.slice(1).map((b) => [b.name, b.input]),
                     [['get_weather', { text: 'Oslo' }], ['get_time', { text: 'Oslo' }]]);
    assert.match(m.content[1].id, /^toolu_/);
    const next = await client.messages.create(params('Oslo', { tools, messages: [
      { role: 'user', content: 'Oslo' }, { role: 'assistant', content: m.content },
      { role: 'user', content: [
        { type: 'tool_result', tool_use_id: m.content[1].id, content: 'sunny' },
        { type: 'tool_result', tool_use_id: m.content[2].id, content: [{ type: 'text', text: 'noon' }] }] }] }));
    assert.equal(next.content[0].text, 'Tool said: sunny; noon');
    assert.equal(next.stop_reason, 'end_turn');
  }],
  ['tools, stream: MessageStream accumulates input_json_delta into the final tool_use input', async () => {
    const stream = client.messages.stream(params('Bergen', {
      tools: [WEATHER], tool_choice: { type: 'tool', name: 'get_weather' } }));
    const fragments = [];
    stream.on('inputJson', (partial) => fragments.push(partial));
    const final = await stream.finalMessage();
    const call = final.content.find((b) => b.type === 'tool_use');
    assert.equal(call.name, 'get_weather');
    assert.deepEqual(call.input, { text: 'Bergen' });
    assert.equal(final.stop_reason, 'tool_use');
    assert.equal(fragments.join(''), '{"text": "Bergen"}');
  }],
  ['thinking, stream: thinking_delta and signature_delta build a signed thinking block first', async () => {
    const stream = client.messages.stream(params('ponder', {
      max_tokens: 2048, thinking: { type: 'enabled', budget_tokens: 1024 } }));
    const final = await stream.finalMessage();
    assert.equal(final.content[0].type, 'thinking');
    assert.equal(final.content[0].thinking, 'Thinking about: ponder');
    assert.match(final.content[0].signature, /^sig_fake_/);
    assert.equal(final.content[1].text, 'You said: ponder');
  }],
  ['a tool_result answering no tool_use → BadRequestError, as Anthropic answers', async () => {
    const e = await rejects(client.messages.create(params('x', { messages: [
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_nobody', content: 'r' }] }] })),
    'orphan tool_result');
    assert.ok(e instanceof Anthropic.BadRequestError, String(e));
    assert.match(e.message, /unexpected `tool_use_id`/);
  }],
  ['MessageStream helper: text events and finalMessage', async () => {
    const stream = client.messages.stream(params('helper works'));
    const parts = [];
    stream.on('text', (t) => parts.push(t));
    const final = await stream.finalMessage();
    assert.equal(final.content[0].text, 'You said: helper works');
    assert.equal(final.stop_reason, 'end_turn');
    assert.equal(final.usage.output_tokens, 4);
    assert.equal(parts.join(''), 'You said: helper works');
  }],
  ['prefill: the reply continues after the last assistant turn', async () => {
    const m = await client.messages.create({
      model: 'claude-3-5-haiku-latest', max_tokens: 100,
      messages: [{ role: 'user', content: 'go on then' }, { role: 'assistant', content: 'You said: go' }],
    });
    assert.equal(m.content[0].text, ' on then');
  }],
  ['content blocks as input are understood', async () => {
    const m = await client.messages.create({
      model: 'claude-3-5-haiku-latest', max_tokens: 100,
      system: [{ type: 'text', text: 'sys' }],
      messages: [{ role: 'user', content: [{ type: 'text', text: 'block input' }] }],
    });
    assert.equal(m.content[0].text, 'You said: block input');
  }],
  ['image and document blocks: the fake decodes exactly the bytes the client sent', async () => {
    const m = await client.messages.create({
      model: 'claude-3-5-haiku-latest', max_tokens: 100,
      messages: [{ role: 'user', content: [
        { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG.toString('base64') } },
        { type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: PDF.toString('base64') } },
        { type: 'text', text: 'what is this' },
      ] }],
    });
    assert.equal(m.content[0].text, `You said: what is this [saw ${saw('image/png', PNG)}; ${saw('application/pdf', PDF)}]`);
  }],
  ['a mislabelled image block → BadRequestError invalid_request_error', async () => {
    const e = await rejects(client.messages.create({
      model: 'claude-3-5-haiku-latest', max_tokens: 100,
      messages: [{ role: 'user', content: [
        { type: 'image', source: { type: 'base64', media_type: 'image/jpeg', data: PNG.toString('base64') } }] }],
    }), 'mislabelled');
    assert.ok(e instanceof Anthropic.BadRequestError, String(e));
    assert.equal(e.error.error.type, 'invalid_request_error');
  }],
  ['429 → RateLimitError with Retry-After and the error body', async () => {
    const e = await rejects(client.messages.create(params('x', { model: 'fake-429:7' })), '429');
    assert.ok(e instanceof Anthropic.RateLimitError, String(e));
    assert.equal(e.status, 429);
    assert.equal(e.headers.get('retry-after'), '7');
    assert.equal(e.error.type, 'error');
    assert.equal(e.error.error.type, 'rate_limit_error');
  }],
  ['429 once then success: the client honours Retry-After and retries', async () => {
    const retrying = new Anthropic({ apiKey: KEY, baseURL: base, maxRetries: 2 });
    const t0 = Date.now();
    const m = await retrying.messages.create(params('retry me', { model: 'fake-429x1:1' }));
    assert.equal(m.content[0].text, 'You said: retry me');
    assert.ok(Date.now() - t0 >= 900, 'Retry-After: 1 was not honoured');
    assert.equal((await recorded()).length, 2);
  }],
  ['529, 500, 401, 400, 404 → the matching APIError classes', async () => {
    const cases = [['529', Anthropic.InternalServerError, 529, 'overloaded_error'],
                   ['500', Anthropic.InternalServerError, 500, 'api_error'],
                   ['401', Anthropic.AuthenticationError, 401, 'authentication_error'],
                   ['400', Anthropic.BadRequestError, 400, 'invalid_request_error'],
                   ['404', Anthropic.NotFoundError, 404, 'not_found_error']];
    for (const [s, cls, status, type] of cases) {
      const e = await rejects(client.messages.create(params('x', { model: 'fake-' + s })), s);
      assert.ok(e instanceof cls, `${s}: ${e}`);
      assert.equal(e.status, status);
      assert.equal(e.error.error.type, type);
    }
  }],
  ['missing anthropic-version → 400 invalid_request_error', async () => {
    const res = await fetch(base + '/v1/messages', {
      method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': KEY },
      body: JSON.stringify(params('x')) });
    assert.equal(res.status, 400);
    const body = await res.json();
    assert.equal(body.type, 'error');
    assert.equal(body.error.type, 'invalid_request_error');
  }],
  ['in-stream error event → the client throws', async () => {
    const stream = await client.messages.create(params('one two three four five', { model: 'fake-streamerror', stream: true }));
    let text = '';
    const e = await rejects((async () => {
      for await (const ev of stream) if (ev.type === 'content_block_delta') text += ev.delta.text;
    })(), 'streamerror');
    assert.ok(e instanceof Anthropic.APIError, String(e));
    assert.ok(text.length > 0, 'no text before the error');
  }],
  ['mid-stream disconnect → the client throws', async () => {
    const stream = await client.messages.create(params('one two three four five', { model: 'fake-disconnect', stream: true }));
    await rejects((async () => { for await (const ev of stream) void ev; })(), 'disconnect');
  }],
  ['garbage body → the client throws', async () => {
    await rejects(client.messages.create(params('x', { model: 'fake-garbage' })), 'garbage');
  }],
  ['models.list', async () => {
    const ids = [];
    for await (const m of client.models.list()) ids.push(m.id);
    assert.ok(ids.includes('claude-3-5-haiku-latest'), ids.join(','));
  }],
]);
