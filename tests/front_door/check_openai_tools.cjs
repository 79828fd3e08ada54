// The official `openai` npm client's tool loop against the daemon's OpenAI
// door and the echo provider's deterministic tool calling (no keys): plain
// and streamed completions with tools, the tool result sent back, the
// stream helper, and runTools (plain and streamed), unchanged client code.
'use strict';
const assert = require('node:assert/strict');
const OpenAI = require('openai');
const { runChecks } = require('./run_checks.cjs');

const base = process.env.SWH_BASE_URL; // http://127.0.0.1:PORT
const client = new OpenAI({ baseURL: base + '/v1', apiKey: 'not-needed', maxRetries: 0 });

const weather = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'weather of a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
};
const ask = 'what does get_weather say for Oslo';

async function main() {
  const checks = [];
  const check = (name, fn) => checks.push([name, fn]);

  check('tool loop, plain', async () => {
    const messages = [{ role: 'user', content: ask }];
    const first = await client.chat.completions.create({ model: 'echo', messages, tools: [weather] });
    const choice = first.choices[0];
    assert.equal(choice.finish_reason, 'tool_calls');
    assert.equal(choice.message.content, null);
    assert.equal(choice.message.tool_calls.length, 1);
    const call = choice.message.tool_calls[0];
    assert.equal(call.id, 'call_echo_1');
    assert.equal(call.type, 'function');
    assert.equal(call.function.name, 'get_weather');
    assert.deepEqual(JSON.parse(call.function.arguments), { city: ask });
    messages.push(choice.message, { role: 'tool', tool_call_id: call.id, content: 'sunny, 21 C' });
    const second = await client.chat.completions.create({ model: 'echo', messages, tools: [weather] });
    assert.equal(second.choices[0].message.content, 'get_weather returned: sunny, 21 C');
    assert.equal(second.choices[0].finish_reason, 'stop');
  });

  check('tool loop, streamed chunks', async () => {
    const messages = [{ role: 'user', content: ask }];
    const stream = await client.chat.completions.create({
      model: 'echo', messages, tools: [weather], stream: true, stream_options: { include_usage: true } });
    const calls = [];
    let finish = null;
    let usage = null;
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      for (const choice of chunk.choices) {
        for (const piece of choice.delta.tool_calls || []) {
          if (!calls[piece.index]) calls[piece.index] = { id: piece.id, name: piece.function.name, arguments: '' };
          calls[piece.index].arguments += piece.function.arguments || '';
        }
        if (choice.finish_reason) finish = choice.finish_reason;
      }
    }
    assert.equal(finish, 'tool_calls');
    assert.equal(calls.length, 1);
    assert.equal(calls[0].id, 'call_echo_1');
    assert.equal(calls[0].name, 'get_weather');
    assert.deepEqual(JSON.parse(calls[0].arguments), { city: ask });
    assert.ok(usage && usage.total_tokens === usage.prompt_tokens + usage.completion_tokens, JSON.stringify(usage));
    messages.push({ role: 'assistant', content: null,
                    tool_calls: [{ id: calls[0].id, type: 'function',
                                   function: { name: calls[0].name, arguments: calls[0].arguments } }] },
                  { role: 'tool', tool_call_id: calls[0].id, content: 'rain' });
    const answer = await client.chat.completions.create({ model: 'echo', messages, tools: [weather], stream: true });
    let text = '';
    for await (const chunk of answer) text += chunk.choices[0]?.delta?.content || '';
    assert.equal(text, 'get_weather returned: rain');
  });

  check('stream helper assembles the tool call', async () => {
    const runner = client.chat.completions.stream({
      model: 'echo', messages: [{ role: 'user', content: ask }], tools: [weather] });
    const final = await runner.finalChatCompletion();
    const call = final.choices[0].message.tool_calls[0];
    assert.equal(final.choices[0].finish_reason, 'tool_calls');
    assert.equal(call.function.name, 'get_weather');
    assert.deepEqual(JSON.parse(call.function.arguments), { city: ask });
  });

  for (const stream of [false, true]) {
    check(`runTools${stream ? ', streamed' : ''}`, async () => {
      const seen = [];
      const runner = client.chat.completions.runTools({
        model: 'echo',
        stream,
        messages: [{ role: 'user', content: ask }],
        tools: [{
          type: 'function',
          function: {
            name: 'get_weather',
            parameters: weather.function.parameters,
            parse: JSON.parse,
            function: (args) => { seen.push(args); return `cloudy in ${args.city.split(' ').pop()}`; },
          },
        }],
      });
      const content = await runner.finalContent();
      assert.deepEqual(seen, [{ city: ask }]);
      assert.equal(content, 'get_weather returned: cloudy in Oslo');
      assert.deepEqual(runner.messages.map((m) => m.role), ['user', 'assistant', 'tool', 'assistant']);
    });
  }

  check('a tool result for no earlier call is a 400 naming the message', async () => {
    await assert.rejects(
      client.chat.completions.create({
        model: 'echo',
        messages: [{ role: 'user', content: ask }, { role: 'tool', tool_call_id: 'call_x', content: 'x' }],
      }),
      (e) => e instanceof OpenAI.BadRequestError && /messages\[1\]\.tool_call_id/.test(e.message));
  });

  await runChecks(checks, 'openai client tool loop vs front door');
}

main().catch((e) => { console.error(e); process.exit(1); });
