// The official `openai` npm client (v6) against tools/fake_upstream: if the
// client parses what the fake sends, the fake speaks OpenAI's wire format.
'use strict';
const { assert, base, recorded, run, rejects, PNG, PDF, saw } = require('./common.cjs');
const OpenAI = require('openai');

const KEY = 'sk-fake-openai-key-0123456789';
const client = new OpenAI({ apiKey: KEY, baseURL: base + '/v1', maxRetries: 0, timeout: 20000 });
const WEATHER = { type: 'function', function: {
  name: 'get_weather', description: 'Weather of a city',
  parameters: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] } } };
const msgs = (text) => [
  { role: 'system', content: 'be brief' },
  { role: 'user', content: text },
];

run('openai', [
  ['non-stream completion parses: text, finish_reason, usage, id', async () => {
    const r = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: msgs('hello there') });
    assert.equal(r.object, 'chat.completion');
    assert.match(r.id, /^chatcmpl-/);
    assert.equal(r.model, 'gpt-4o-mini');
    assert.equal(r.choices.length, 1);
    assert.equal(r.choices[0].message.role, 'assistant');
    assert.equal(r.choices[0].message.content, 'You said: hello there');
    assert.equal(r.choices[0].finish_reason, 'stop');
    assert.deepEqual([r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens], [4, 4, 8]);
    const [req] = await recorded();
    assert.equal(req.path, '/v1/chat/completions');
    assert.equal(req.headers['authorization'], 'Bearer ' + KEY);
    assert.equal(req.body.messages[0].role, 'system');
  }],
  ['max_tokens cuts the reply: finish_reason length', async () => {
    const r = await client.chat.completions.create({ model: 'gpt-4o', max_tokens: 2, messages: msgs('a b c d') });
    assert.equal(r.choices[0].message.content, 'You said: ');
    assert.equal(r.choices[0].finish_reason, 'length');
    assert.equal(r.usage.completion_tokens, 2);
  }],
  ['stop: the reply ends before the first stop sequence, finish_reason stop', async () => {
    const r = await client.chat.completions.create({
      model: 'gpt-4o', stop: ['zzz', 'two'], messages: msgs('one two three') });
    assert.equal(r.choices[0].message.content, 'You said: one ');
    assert.equal(r.choices[0].finish_reason, 'stop');
    assert.equal(r.usage.completion_tokens, 3);
    const stream = await client.chat.completions.create({
      model: 'gpt-4o', stop: 'three', messages: msgs('one two three four'), stream: true });
    let text = '', finish = null;
    for await (const chunk of stream) {
      text += chunk.choices[0].delta.content || '';
      finish = chunk.choices[0].finish_reason || finish;
    }
    assert.equal(text, 'You said: one two ');
    assert.equal(finish, 'stop');
  }],
  ['stream: chunks, [DONE], include_usage chunk', async () => {
    const stream = await client.chat.completions.create({
      model: 'gpt-4o-mini', messages: msgs('stream me please'), stream: true,
      stream_options: { include_usage: true },
    });
    let text = '', finish = null, usage = null, ids = new Set(), n = 0;
    for await (const chunk of stream) {
      n++;
      assert.equal(chunk.object, 'chat.completion.chunk');
      ids.add(chunk.id);
      if (chunk.choices.length) {
        text += chunk.choices[0].delta.content || '';
        if (chunk.choices[0].finish_reason) finish = chunk.choices[0].finish_reason;
      }
      if (chunk.usage) usage = chunk.usage;
    }
    assert.equal(text, 'You said: stream me please');
    assert.equal(finish, 'stop');
    assert.equal(ids.size, 1);
    assert.ok(n >= 6, `only ${n} chunks`);
    assert.equal(usage.completion_tokens, 5);
    const [req] = await recorded();
    assert.equal(req.body.stream, true);
  }],
  ['stream helper accumulates the final completion', async () => {
    const runner = client.chat.completions.stream({ model: 'gpt-4o-mini', messages: msgs('helper works') });
    const deltas = [];
    runner.on('content', (delta) => deltas.push(delta));
    const final = await runner.finalChatCompletion();
    assert.equal(final.choices[0].message.content, 'You said: helper works');
    assert.equal(final.choices[0].finish_reason, 'stop');
    assert.equal(deltas.join(''), 'You said: helper works');
  }],
  ['assistant prefix: the reply continues after it', async () => {
    const r = await client.chat.completions.create({
      model: 'gpt-4o', messages: [...msgs('go on then'), { role: 'assistant', content: 'You said: go' }],
    });
    assert.equal(r.choices[0].message.content, ' on then');
  }],
  ['models.list', async () => {
    const ids = [];
    for await (const m of client.models.list()) ids.push(m.id);
    assert.ok(ids.includes('gpt-4o-mini'), ids.join(','));
  }],
  ['image_url and file parts: the fake decodes exactly the bytes the client sent', async () => {
    const r = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: [
        { type: 'text', text: 'what is this' },
        { type: 'image_url', image_url: { url: 'data:image/png;base64,' + PNG.toString('base64') } },
        { type: 'file', file: { filename: 'doc.pdf', file_data: 'data:application/pdf;base64,' + PDF.toString('base64') } },
      ] }],
    });
    assert.equal(r.choices[0].message.content,
                 `You said: what is this [saw ${saw('image/png', PNG)}; ${saw('application/pdf', PDF)}]`);
    const [req] = await recorded();
    assert.equal(req.body.messages[0].content[1].type, 'image_url');
  }],
  ['a mislabelled image part → BadRequestError, as OpenAI answers', async () => {
    const e = await rejects(client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: [
        { type: 'image_url', image_url: { url: 'data:image/png;base64,' + PDF.toString('base64') } }] }],
    }), 'mislabelled');
    assert.ok(e instanceof OpenAI.BadRequestError, String(e));
    assert.match(e.message, /does not match/);
  }],
  ['tools, non-stream: message.tool_calls parse; the tool results get a text answer', async () => {
    const tools = [WEATHER, { type: 'function', function: { name: 'get_time', parameters: { type: 'object' } } }];
    const r = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: msgs('Oslo'), tools });
    const m = r.choices[0].message;
    assert.equal(r.choices[0].finish_reason, 'tool_calls');
    assert.equal(m.content, null);
    assert.deepEqual(m.tool_calls.map((c) => [c.type, c.function.name, JSON.parse(c.function.arguments)]),
                     [['function', 'get_weather', { text: 'Oslo' }], ['function', 'get_time', { text: 'Oslo' }]]);
    const next = await client.chat.completions.create({ model: 'gpt-4o-mini', tools, messages: [
      ...msgs('Oslo'), m,
      { role: 'tool', tool_call_id: m.tool_calls[0].id, content: 'sunny' },
      { role: 'tool', tool_call_id: m.tool_calls[1].id, content: 'noon' }] });
    assert.equal(next.choices[0].message.content, 'Tool said: sunny; noon');
    assert.equal(next.choices[0].finish_reason, 'stop');
  }],
  ['tools, stream: the stream helper accumulates tool_calls chunks into the final message', async () => {
    const runner = client.chat.completions.stream({
      model: 'gpt-4o-mini', messages: msgs('Bergen'), tools: [WEATHER],
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
      stream_options: { include_usage: true } });
    const done = [];
    runner.on('tool_calls.function.arguments.done', (e) => done.push([e.name, e.arguments]));
    const final = await runner.finalChatCompletion();
    const call = final.choices[0].message.tool_calls[0];
    assert.match(call.id, /^call_/);
    assert.equal(call.function.name, 'get_weather');
    assert.deepEqual(JSON.parse(call.function.arguments), { text: 'Bergen' });
    assert.equal(final.choices[0].finish_reason, 'tool_calls');
    assert.deepEqual(done, [['get_weather', '{"text": "Bergen"}']]);
  }],
  ['tools: the client\'s own tool loop (runTools), plain and streamed, ends in the text answer', async () => {
    for (const stream of [false, true]) {
      const seen = [];
      const runner = client.chat.completions.runTools({
        model: 'gpt-4o-mini', messages: msgs('Tromso'), stream,
        tools: [{ type: 'function', function: {
          name: 'get_weather', parameters: WEATHER.function.parameters, parse: JSON.parse,
          function: (args) => { seen.push(args); return 'cold in ' + args.text; } } }] });
      assert.equal(await runner.finalContent(), 'Tool said: cold in Tromso');
      assert.deepEqual(seen, [{ text: 'Tromso' }]);
    }
  }],
  ['a tool message answering no call → BadRequestError, as OpenAI answers', async () => {
    const e = await rejects(client.chat.completions.create({ model: 'gpt-4o-mini', messages: [
      ...msgs('x'), { role: 'tool', tool_call_id: 'call_nobody', content: 'r' }] }), 'orphan tool message');
    assert.ok(e instanceof OpenAI.BadRequestError, String(e));
    assert.match(e.message, /preceeding message with 'tool_calls'/);
  }],
  ['429 → RateLimitError with Retry-After and the error body', async () => {
    const e = await rejects(client.chat.completions.create({ model: 'fake-429:7', messages: msgs('x') }), '429');
    assert.ok(e instanceof OpenAI.RateLimitError, String(e));
    assert.equal(e.status, 429);
    assert.equal(e.headers.get('retry-after'), '7');
    assert.equal(e.code, 'rate_limit_exceeded');
    assert.match(e.message, /rate limit/);
  }],
  ['429 once then success: the client honours Retry-After and retries', async () => {
    const retrying = new OpenAI({ apiKey: KEY, baseURL: base + '/v1', maxRetries: 2 });
    const t0 = Date.now();
    const r = await retrying.chat.completions.create({ model: 'fake-429x1:1', messages: msgs('retry me') });
    assert.equal(r.choices[0].message.content, 'You said: retry me');
    assert.ok(Date.now() - t0 >= 900, 'Retry-After: 1 was not honoured');
    assert.equal((await recorded()).length, 2);
  }],
  ['503, 500, 401, 400 → the matching APIError classes', async () => {
    const cases = [['503', OpenAI.InternalServerError, 503], ['500', OpenAI.InternalServerError, 500],
                   ['401', OpenAI.AuthenticationError, 401], ['400', OpenAI.BadRequestError, 400],
                   ['404', OpenAI.NotFoundError, 404]];
    for (const [s, cls, status] of cases) {
      const e = await rejects(client.chat.completions.create({ model: 'fake-' + s, messages: msgs('x') }), s);
      assert.ok(e instanceof cls, `${s}: ${e}`);
      assert.equal(e.status, status);
      assert.equal(typeof e.error.message, 'string');
    }
  }],
  ['in-stream error → the client throws', async () => {
    const stream = await client.chat.completions.create({
      model: 'fake-streamerror', messages: msgs('one two three four five'), stream: true });
    let text = '';
    const e = await rejects((async () => { for await (const c of stream) text += c.choices[0]?.delta?.content || ''; })(),
                            'streamerror');
    assert.ok(e instanceof OpenAI.APIError, String(e));
    assert.ok(text.length > 0 && text.length < 'You said: one two three four five'.length, text);
  }],
  ['mid-stream disconnect → the client throws', async () => {
    const stream = await client.chat.completions.create({
      model: 'fake-disconnect', messages: msgs('one two three four five'), stream: true });
    await rejects((async () => { for await (const c of stream) void c; })(), 'disconnect');
  }],
  ['garbage body → the client throws', async () => {
    await rejects(client.chat.completions.create({ model: 'fake-garbage', messages: msgs('x') }), 'garbage');
  }],
  ['timeout → APIConnectionTimeoutError', async () => {
    const quick = new OpenAI({ apiKey: KEY, baseURL: base + '/v1', maxRetries: 0, timeout: 300 });
    const e = await rejects(quick.chat.completions.create({ model: 'fake-timeout:1500', messages: msgs('x') }), 'timeout');
    assert.ok(e instanceof OpenAI.APIConnectionTimeoutError, String(e));
  }],
  ['Azure-style path with api-version', async () => {
    const azure = new OpenAI({ apiKey: KEY, baseURL: base + '/openai/deployments/dep1', maxRetries: 0,
                               defaultQuery: { 'api-version': '2024-10-21' } });
    const r = await azure.chat.completions.create({ model: 'gpt-4o', messages: msgs('azure') });
    assert.equal(r.choices[0].message.content, 'You said: azure');
    const [req] = await recorded();
    assert.equal(req.path, '/openai/deployments/dep1/chat/completions');
    assert.equal(req.query['api-version'], '2024-10-21');
  }],
]);
