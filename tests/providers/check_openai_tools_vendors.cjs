// The official `openai` npm client's tool loop, unchanged client code, through
// the daemon's OpenAI door to each vendor plugin (tools/fake_upstream behind
// them): for every model in SWH_MODELS, plain and streamed, the tool call
// comes back in OpenAI's shape and the tool result is answered. Run by
// test_openai_client_vendors.py, which also checks what the upstream received.
'use strict';
const assert = require('node:assert/strict');
const OpenAI = require('openai');

const client = new OpenAI({ baseURL: process.env.SWH_BASE_URL + '/v1', apiKey: 'not-needed', maxRetries: 0 });
const models = process.env.SWH_MODELS.split(',');
const weather = {
  type: 'function',
  function: { name: 'get_weather', description: 'Weather of a city',
              parameters: { type: 'object', properties: { text: { type: 'string' } } } },
};
const ask = 'weather in Oslo';

async function loop(model, stream) {
  const messages = [{ role: 'user', content: ask }];
  const request = { model, messages, tools: [weather], tool_choice: 'required', temperature: 0.2 };
  const first = stream ? await client.chat.completions.stream(request).finalChatCompletion()
                       : await client.chat.completions.create(request);
  const choice = first.choices[0];
  assert.equal(choice.finish_reason, 'tool_calls', model);
  assert.equal(choice.message.tool_calls.length, 1, model);
  const call = choice.message.tool_calls[0];
  assert.equal(call.type, 'function');
  assert.equal(call.function.name, 'get_weather');
  assert.deepEqual(JSON.parse(call.function.arguments), { text: ask });
  messages.push(choice.message, { role: 'tool', tool_call_id: call.id, content: 'sunny' });
  // usage in a stream only when asked for, as OpenAI does
  const next = stream ? { model, messages, tools: [weather], stream_options: { include_usage: true } }
                      : { model, messages, tools: [weather] };
  const second = stream ? await client.chat.completions.stream(next).finalChatCompletion()
                        : await client.chat.completions.create(next);
  assert.equal(second.choices[0].message.content, 'Tool said: sunny', model);
  assert.equal(second.choices[0].finish_reason, 'stop', model);
  assert.ok(second.usage.prompt_tokens > 0, model);
}

async function main() {
  let failed = 0;
  for (const model of models)
    for (const stream of [false, true]) {
      const name = `${model} ${stream ? 'streamed' : 'plain'}`;
      try {
        await loop(model, stream);
        console.log(`ok   ${name}`);
      } catch (e) {
        failed += 1;
        console.log(`FAIL ${name}: ${e.stack || e}`);
      }
    }
  process.exit(failed ? 1 : 0);
}
main();
