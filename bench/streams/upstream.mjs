// A dribbling OpenAI chat-completions upstream for bench/streams/run.sh:
// every POST .../chat/completions with "stream":true gets one content chunk
// a second for SECONDS seconds (on an absolute schedule, so chunks do not
// drift), then a finish chunk and `data: [DONE]`. Serves HTTP/1.1 on
// --h1-port and HTTP/2 with prior knowledge (h2c) on --h2-port; Node's
// built-in modules only. Prints "ready" when both listen.
import http from 'node:http';
import http2 from 'node:http2';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []));
const seconds = Number(args.seconds ?? 10);
const intervalMs = Number(args['interval-ms'] ?? 1000);

const frame = (delta, finish) =>
  'data: ' + JSON.stringify({
    id: 'chatcmpl-dribble', object: 'chat.completion.chunk', created: 1700000000, model: 'dribble',
    choices: [{ index: 0, delta, finish_reason: finish }],
  }) + '\n\n';
const ROLE = frame({ role: 'assistant', content: '' }, null);
const TOKEN = frame({ content: 'tok ' }, null);
const FINISH = frame({}, 'stop') + 'data: [DONE]\n\n';

let open = 0;
// `res` is an http.ServerResponse or an http2 compat Http2ServerResponse.
function serve(req, res) {
  if (req.method === 'GET' && req.url.endsWith('/models')) {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"object":"list","data":[{"id":"dribble","object":"model"}]}');
    return;
  }
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.write(ROLE);
    ++open;
    const t0 = Date.now();
    let sent = 0;
    let timer = null;
    const tick = () => {
      if (res.destroyed || res.writableEnded) { --open; return; }
      ++sent;
      if (sent < seconds) {
        res.write(TOKEN);
        timer = setTimeout(tick, Math.max(0, t0 + (sent + 1) * intervalMs - Date.now()));
      } else {
        res.end(TOKEN + FINISH);
        --open;
      }
    };
    timer = setTimeout(tick, intervalMs);
    res.on('close', () => { if (timer && !res.writableEnded) { clearTimeout(timer); --open; } });
  });
}

const h1 = http.createServer({ keepAliveTimeout: 60000, requestTimeout: 0 }, serve);
h1.maxHeadersCount = 100;
const h2 = http2.createServer({
  maxSessionMemory: 1024, // MB: thousands of streams share one session
  settings: { maxConcurrentStreams: 100000 },
}, serve);
let listening = 0;
const ready = () => { if (++listening === 2) console.log('ready'); };
h1.listen(Number(args['h1-port']), '127.0.0.1', ready);
h2.listen(Number(args['h2-port']), '127.0.0.1', ready);
process.on('SIGTERM', () => process.exit(0));
