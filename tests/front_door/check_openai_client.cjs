// The official `openai` npm client (pinned in tests/upstream_fake) against
// the daemon's OpenAI-compatible front door, unchanged: plain and streamed
// completions, model listing, errors, and the session header.
'use strict';
const assert = require('node:assert/strict');
const OpenAI = require('openai');
const { runChecks } = require('./run_checks.cjs');

const base = process.env.SWH_BASE_URL; // http://127.0.0.1:PORT
const client = new OpenAI({ baseURL: base + '/v1', apiKey: 'not-needed', maxRetries: 0 });

async function main() {
  const checks = [];
  const check = (name, fn) => checks.push([name, fn]);

  check('plain completion', async () => {
    const r = await client.chat.completions.create({
      model: 'echo',
      messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hello front door' }],
    });
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.choices[0].message.role, 'assistant');
    assert.equal(r.choices[0].message.content, 'echo#1 hello front door');
    assert.equal(r.choices[0].finish_reason, 'stop');
    assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
  });

  check('streamed completion', async () => {
    const stream = await client.chat.completions.create({
      model: 'echo/echo-2',
      stream: true,
      messages: [{ role: 'user', content: 'one' }, { role: 'assistant', content: 'x' },
                 { role: 'user', content: 'stream these words' }],
    });
    let text = '';
    let pieces = 0;
    let finish = null;
    for await (const chunk of stream) {
      assert.equal(chunk.object, 'chat.completion.chunk');
      const choice = chunk.choices[0];
      if (choice.delta.content) { text += choice.delta.content; pieces++; }
      if (choice.finish_reason) finish = choice.finish_reason;
    }
    assert.equal(text, 'echo#2 stream these words');
    assert.ok(pieces > 1, 'more than one piece');
    assert.equal(finish, 'stop');
  });

  check('stream helper collects the final message', async () => {
    const runner = client.chat.completions.stream({ model: 'echo', messages: [{ role: 'user', content: 'helper' }] });
    const final = await runner.finalChatCompletion();
    assert.equal(final.choices[0].message.content, 'echo#1 helper');
  });

  check('models list', async () => {
    const ids = [];
    for await (const m of client.models.list()) ids.push(m.id);
    assert.ok(ids.includes('echo'), JSON.stringify(ids));
  });

  check('errors surface as API errors', async () => {
    await assert.rejects(
      client.chat.completions.create({ model: 'echo', messages: [] }),
      (e) => e instanceof OpenAI.BadRequestError && /messages/.test(e.message));
  });

  check('session header appends the exchange to a stored session', async () => {
    const created = await (await fetch(base + '/v1/sessions', {
      method: 'POST', body: JSON.stringify({ user_id: 'front-door' }) })).json();
    const withSession = new OpenAI({ baseURL: base + '/v1', apiKey: 'x', maxRetries: 0,
                                     defaultHeaders: { 'X-Swarmhost-Session': created.id } });
    const r = await withSession.chat.completions.create({ model: 'echo', messages: [{ role: 'user', content: 'remember me' }] });
    assert.equal(r.choices[0].message.content, 'echo#1 remember me');
    const stored = await (await fetch(base + '/v1/sessions/' + created.id + '/messages')).json();
    assert.deepEqual(stored.messages.map((m) => [m.role, m.content]),
                     [['user', 'remember me'], ['assistant', 'echo#1 remember me']]);
  });

  await runChecks(checks, 'openai client vs front door');
}

main().catch((e) => { console.error(e); process.exit(1); });
