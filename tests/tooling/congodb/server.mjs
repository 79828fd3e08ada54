// CongoDB (the MongoDB-wire emulator inside @push.rocks/smartmongo 2.2.0) on
// 127.0.0.1 in memory mode, for the tests: started by swh_servers.py.
//
//   node server.mjs <install dir> <port>
//
// Memory mode because file mode rewrites whole files and loses BSON types
// (an int64 comes back as a double). Prints "ready <port>" once listening;
// SIGTERM stops it cleanly, SIGKILL is the crash.
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [installDir, portText] = process.argv.slice(2);
const port = Number(portText);
if (!installDir || !Number.isInteger(port) || port <= 0) {
    console.error('usage: node server.mjs <install dir> <port>');
    process.exit(2);
}
const entry = path.join(installDir, 'vendor', 'smartmongo', 'dist_ts', 'congodb', 'index.js');
const { CongoServer } = await import(pathToFileURL(entry).href);
const server = new CongoServer({ host: '127.0.0.1', port, storage: 'memory' });
await server.start();
console.log(`ready ${port}`);
process.on('SIGTERM', async () => {
    await server.stop();
    process.exit(0);
});
