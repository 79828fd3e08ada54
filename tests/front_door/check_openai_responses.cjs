// The official `openai` npm client (openai@6, unchanged) against the
// daemon's Responses and Conversations doors and the echo provider (whose
// reply "echo#<N> <last user text>" counts the user messages that reached
// it): responses.create plain and streamed (responses.stream + finalResponse,
// and create({stream:true}) with its sequence numbers), previous_response_id,
// a branch, a function call round trip, retrieve, inputItems.list, delete;
// conversations.* and conversations.items.*; responses.create({conversation});
// errors through the client's own classes; another user's key gets
// NotFoundError everywhere. Run by run_front_door.py --keys.
'use strict';
const assert = require('node:assert/strict');
const OpenAI = require('openai');
const { runChecks } = require('./run_checks.cjs');

const base = process.env.SWH_BASE_URL + '/v1';
const client = new OpenAI({ baseURL: base, apiKey: process.env.SWH_KEY, maxRetries: 0 });
const other = new OpenAI({ baseURL: base, apiKey: process.env.SWH_OTHER_KEY, maxRetries: 0 });

const weather = {
  type: 'function',
  name: 'get_weather',
  description: 'weather of a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  strict: false,
};
const ask = 'what does get_weather say for Oslo';
const isNotFound = (e) => e instanceof OpenAI.NotFoundError;
const isBadRequest = (e) => e instanceof OpenAI.BadRequestError;

async function main() {
  const checks = [];
  const check = (name, fn) => checks.push([name, fn]);
  const made = {}; // objects the later checks use

  check('responses.create, plain', async () => {
    const r = await client.responses.create({ model: 'echo', input: 'hello', instructions: 'be brief' });
    assert.match(r.id, /^resp_[0-9a-f]{64}$/);
    assert.equal(r.object, 'response');
    assert.equal(r.status, 'completed');
    assert.equal(r.output_text, 'echo#1 hello');
    assert.equal(r.instructions, 'be brief');
    assert.equal(r.usage.total_tokens, r.usage.input_tokens + r.usage.output_tokens);
    made.first = r;
  });

  check('responses.create with previous_response_id continues the chain', async () => {
    const r = await client.responses.create({ model: 'echo', input: 'again', previous_response_id: made.first.id });
    assert.equal(r.output_text, 'echo#2 again');
    assert.equal(r.previous_response_id, made.first.id);
    assert.equal(r.id.slice(5, 37), made.first.id.slice(5, 37)); // the same session
    made.second = r;
  });

  check('an earlier previous_response_id branches', async () => {
    const r = await client.responses.create({ model: 'echo', input: 'branch', previous_response_id: made.first.id });
    assert.equal(r.output_text, 'echo#2 branch');
    assert.notEqual(r.id.slice(5, 37), made.first.id.slice(5, 37));
    const cont = await client.responses.create({ model: 'echo', input: 'on', previous_response_id: made.second.id });
    assert.equal(cont.output_text, 'echo#3 on');
  });

  check('responses.stream + finalResponse', async () => {
    const stream = client.responses.stream({ model: 'echo', input: 'streamed words here',
      previous_response_id: made.second.id });
    let text = '';
    stream.on('response.output_text.delta', (e) => { text += e.delta; });
    const final = await stream.finalResponse();
    // (the SDK's output_text convenience is added by create(), not by the stream helper)
    const finalText = final.output.filter((i) => i.type === 'message')
      .flatMap((i) => i.content).map((p) => p.text).join('');
    assert.equal(finalText, 'echo#3 streamed words here');
    assert.equal(text, finalText);
    const stored = await client.responses.retrieve(final.id);
    assert.equal(stored.output_text, finalText);
    assert.deepEqual(stored.output.map((i) => i.id), final.output.map((i) => i.id));
  });

  check('responses.create({stream:true}): events in order with sequence numbers', async () => {
    const stream = await client.responses.create({ model: 'echo', input: 'count these', stream: true });
    const types = [];
    let expected = 0;
    let completed = null;
    for await (const event of stream) {
      assert.equal(event.sequence_number, expected++);
      types.push(event.type);
      if (event.type === 'response.completed') completed = event.response;
    }
    assert.deepEqual(types.slice(0, 4), ['response.created', 'response.in_progress',
      'response.output_item.added', 'response.content_part.added']);
    assert.ok(types.includes('response.output_text.delta'));
    assert.deepEqual(types.slice(-4), ['response.output_text.done', 'response.content_part.done',
      'response.output_item.done', 'response.completed']);
    assert.equal(completed.output[0].content[0].text, 'echo#1 count these');
  });

  check('a function call round trip', async () => {
    const first = await client.responses.create({ model: 'echo', input: ask, tools: [weather] });
    const call = first.output.find((item) => item.type === 'function_call');
    assert.equal(call.name, 'get_weather');
    assert.deepEqual(JSON.parse(call.arguments), { city: ask });
    const second = await client.responses.create({
      model: 'echo', previous_response_id: first.id, tools: [weather],
      input: [{ type: 'function_call_output', call_id: call.call_id, output: 'sunny, 21 C' }] });
    assert.equal(second.output_text, 'get_weather returned: sunny, 21 C');
    // Streamed, through the helper: the call's arguments accumulate.
    const stream = client.responses.stream({ model: 'echo', input: ask, tools: [weather] });
    const final = await stream.finalResponse();
    const streamedCall = final.output.find((item) => item.type === 'function_call');
    assert.deepEqual(JSON.parse(streamedCall.arguments), { city: ask });
  });

  check('responses.retrieve and inputItems.list', async () => {
    const r = await client.responses.create({ model: 'echo', previous_response_id: made.first.id,
      input: [{ role: 'user', content: 'x' }, { role: 'user', content: [{ type: 'input_text', text: 'y' }] }] });
    const got = await client.responses.retrieve(r.id);
    assert.equal(got.output_text, 'echo#3 y');
    const items = [];
    for await (const item of client.responses.inputItems.list(r.id, { order: 'asc', limit: 1 })) items.push(item);
    assert.deepEqual(items.map((i) => i.content[0].text), ['x', 'y']); // the client paged with `after`
  });

  check('responses.delete, then NotFoundError', async () => {
    const r = await client.responses.create({ model: 'echo', input: 'short lived' });
    await client.responses.delete(r.id);
    await assert.rejects(client.responses.retrieve(r.id), isNotFound);
  });

  check('errors through the client classes', async () => {
    await assert.rejects(client.responses.create({ model: 'echo', input: 'x',
      previous_response_id: 'resp_' + '0'.repeat(64) }), isNotFound);
    await assert.rejects(client.responses.create({ model: 'echo', input: 'x', conversation: 'conv_' + '0'.repeat(32) }),
      isNotFound);
    await assert.rejects(client.responses.create({ model: 'echo', previous_response_id: made.first.id,
      input: [{ type: 'function_call_output', call_id: 'call_nobody', output: 'x' }] }),
    (e) => isBadRequest(e) && e.param === 'input[0].call_id');
    const conv = await client.conversations.create({});
    await assert.rejects(client.responses.create({ model: 'echo', input: 'x',
      previous_response_id: made.first.id, conversation: conv.id }), isBadRequest);
  });

  check('conversations and their items', async () => {
    const conv = await client.conversations.create({ metadata: { topic: 'demo' },
      items: [{ type: 'message', role: 'user', content: 'first' }] });
    assert.match(conv.id, /^conv_[0-9a-f]{32}$/);
    assert.deepEqual((await client.conversations.retrieve(conv.id)).metadata, { topic: 'demo' });
    const updated = await client.conversations.update(conv.id, { metadata: { topic: 'other' } });
    assert.deepEqual(updated.metadata, { topic: 'other' });
    const added = await client.conversations.items.create(conv.id,
      { items: [{ type: 'message', role: 'user', content: 'second' }] });
    assert.equal(added.data.length, 1);
    const r = await client.responses.create({ model: 'echo', input: 'third', conversation: conv.id });
    assert.equal(r.output_text, 'echo#3 third');
    const texts = [];
    for await (const item of client.conversations.items.list(conv.id, { order: 'asc', limit: 2 })) {
      texts.push(item.content[0].text);
    }
    assert.deepEqual(texts, ['first', 'second', 'third', 'echo#3 third']);
    const one = await client.conversations.items.retrieve(added.data[0].id, { conversation_id: conv.id });
    assert.equal(one.content[0].text, 'second');
    await client.conversations.items.delete(added.data[0].id, { conversation_id: conv.id });
    await assert.rejects(client.conversations.items.retrieve(added.data[0].id, { conversation_id: conv.id }),
      isNotFound);
    const next = await client.responses.create({ model: 'echo', input: 'fourth', conversation: conv.id });
    assert.equal(next.output_text, 'echo#3 fourth'); // 'second' is gone from the history
    made.conversation = conv;
    made.item = one;
  });

  check("another user's key gets NotFoundError on every object", async () => {
    const id = made.first.id;
    const cid = made.conversation.id;
    const attempts = [
      () => other.responses.retrieve(id),
      () => other.responses.delete(id),
      () => other.responses.inputItems.list(id),
      () => other.responses.create({ model: 'echo', input: 'x', previous_response_id: id }),
      () => other.responses.create({ model: 'echo', input: 'x', conversation: cid }),
      () => other.conversations.retrieve(cid),
      () => other.conversations.update(cid, { metadata: { a: 'b' } }),
      () => other.conversations.delete(cid),
      () => other.conversations.items.list(cid),
      () => other.conversations.items.create(cid, { items: [{ role: 'user', content: 'x' }] }),
      () => other.conversations.items.retrieve(made.item.id, { conversation_id: cid }),
      () => other.conversations.items.delete(made.item.id, { conversation_id: cid }),
    ];
    // One at a time: each is a function, so no rejection goes unhandled while another is awaited.
    for (const attempt of attempts) await assert.rejects(attempt, isNotFound);
    assert.equal((await client.responses.retrieve(id)).id, id); // still the owner's
  });

  check('conversations.delete', async () => {
    const deleted = await client.conversations.delete(made.conversation.id);
    assert.equal(deleted.deleted, true);
    await assert.rejects(client.conversations.retrieve(made.conversation.id), isNotFound);
  });

  await runChecks(checks, 'openai client vs the Responses and Conversations doors');
}

main().catch((e) => { console.error(e); process.exit(1); });
