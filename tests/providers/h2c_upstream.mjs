// An OpenAI chat-completions upstream that speaks only HTTP/2 with prior
// knowledge (h2c), for test_http2_upstream.py; Node's built-in http2 and
// http modules only. The last user message picks the behaviour:
//   "together:K"  hold the answer until K such streams are open at once
//                 (released anyway after 20 s, then reported as not together),
//                 then stream three chunks and [DONE];
//   "drip"        a chunk every 100 ms, up to 600, then [DONE].
// A plain HTTP/1.1 port answers GET /stats: sessions (connections) seen,
// streams seen and their HTTP versions, drips cut by the client before
// their end, and whether the last group was released together.
//   node h2c_upstream.mjs PORT_FILE   (writes "H2_PORT STATS_PORT")
import fs from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';

const stats = { sessions: 0, streams: 0, versions: {}, drips_cut: 0, together: null };
const chunk = (delta, finish) =>
  'data: ' + JSON.stringify({ id: 'chatcmpl-h2c', object: 'chat.completion.chunk', created: 1700000000,
    model: 'h2c', choices: [{ index: 0, delta, finish_reason: finish }] }) + '\n\n';
const DONE = chunk({}, 'stop') + 'data: [DONE]\n\n';
let held = [];
let releaseTimer = null;

function release(together) {
  clearTimeout(releaseTimer);
  stats.together = together;
  for (const res of held.splice(0)) {
    if (res.destroyed) continue;
    res.write(chunk({ role: 'assistant', content: 'one ' }, null));
    res.write(chunk({ content: 'two ' }, null));
    res.end(chunk({ content: 'three' }, null) + DONE);
  }
}

const server = http2.createServer({ settings: { maxConcurrentStreams: 10000 } }, (req, res) => {
  ++stats.streams;
  stats.versions[req.httpVersion] = (stats.versions[req.httpVersion] || 0) + 1;
  let body = '';
  req.on('data', (d) => { body += d; });
  req.on('end', () => {
    const messages = JSON.parse(body).messages || [];
    const last = String(messages.length ? messages[messages.length - 1].content : '');
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    if (last.startsWith('together:')) {
      const k = Number(last.split(':')[1]);
      held.push(res);
      if (held.length === 1) releaseTimer = setTimeout(() => release(false), 20000);
      if (held.length >= k) release(true);
      return;
    }
    let sent = 0;
    const timer = setInterval(() => {
      if (++sent >= 600) { clearInterval(timer); res.end(DONE); return; }
      res.write(chunk({ content: 'drop ' }, null));
    }, 100);
    res.on('close', () => {
      clearInterval(timer);
      if (!res.writableEnded) ++stats.drips_cut;
    });
  });
});
server.on('session', () => { ++stats.sessions; });

const statsServer = http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify(stats));
});

let listening = 0;
const ready = () => {
  if (++listening < 2) return;
  fs.writeFileSync(process.argv[2], `${server.address().port} ${statsServer.address().port}`);
};
server.listen(0, '127.0.0.1', ready);
statsServer.listen(0, '127.0.0.1', ready);
process.on('SIGTERM', () => process.exit(0));
