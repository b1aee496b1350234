// A fault-injecting HTTP proxy for the S3 end-to-end tests (test-only;
// docs/S3-TEST-SERVER.md). It sits between bulwark and the S3 test server,
// forwards every request unchanged (the Host header too, so SigV4 signatures
// still verify upstream) and, on a deterministic seeded schedule, breaks some
// of them the ways networks and S3 break:
//   drop          forwards the request, then closes the connection without a
//                 byte of the response (the server did the work, the client
//                 never hears)
//   drop-request  PUT/POST with a body of 2+ bytes: forwards the headers and
//                 half the body, then closes both connections (the server sees
//                 a request cut off mid-body)
//   500           answers 500 InternalError (not forwarded)
//   503           answers 503 SlowDown (not forwarded)
//   429           answers 429 TooManyRequests (not forwarded)
//   403           answers 403 AccessDenied (not forwarded; only when named in
//                 --kinds or --sequence: not a transient fault)
//   stall-request PUT/POST with a body of 2+ bytes: forwards the headers and
//                 half the body, then reads no more and holds both connections
//                 (the client is stuck mid-upload: a test can kill it there);
//                 the upstream request is cut off once the client is gone.
//                 Only when named in --kinds or --sequence.
//   stall         forwards the request, then sends nothing and holds the
//                 connection until the client gives up (or --stall-max-ms)
//   stall-body    GET: forwards, sends the status, the headers and half the
//                 body, then holds the connection like stall
//   truncate      GET: forwards, sends the status, the headers with the full
//                 Content-Length and half the body, then closes
// A GET whose response body is empty cannot be cut: truncate and stall-body
// then act as drop and stall (logged so, with "fallback_from").
//
// Schedule: every request that passes the filters (--methods, --path-regex)
// draws one number from a PRNG seeded with --seed; below --rate it is
// faulted. The kind is the applicable one (above) injected least often so far,
// first in --kinds order on a tie: every kind is exercised before any repeats.
// --sequence KIND,none,... faults the first eligible requests explicitly (an
// entry waits for a request it applies to) before the random schedule. With
// requests in parallel the draws are the same, but which request gets which
// depends on arrival order.
//
// Log: one JSON line per request, appended to DIR/requests.jsonl before the
// client sees any of the response (so once the client is done, its requests
// are logged): seq, method, path, query, headers (all but authorization and
// x-amz-security-token, names lower-case), fault ("none" or a kind),
// upstream_status (null if not forwarded or no answer), status (what the
// client was sent, null if nothing), body_length and bytes_sent (the
// response body's full length and what of it was sent; for a request passed
// through, both are its Content-Length, null if it had none), error (the
// upstream connection failed: the client got a 502 or a reset).
//
// Control (never faulted or logged): GET /__fault-proxy/schedule returns the
// schedule; PUT with a JSON body {"seed","rate","kinds","methods",
// "path_regex","sequence","stall_max_ms"} replaces it and restarts the
// draws and counts. ("__fault-proxy" is not a valid bucket name.)
//
// Usage: node fault-proxy.js --upstream http://127.0.0.1:PORT --dir DIR
//        [--seed 1] [--rate 0] [--kinds drop,500,...] [--methods GET,PUT]
//        [--path-regex RE] [--sequence KIND,...] [--stall-max-ms 600000]
//        [--parent-pid PID]
// Listens on 127.0.0.1, port from the kernel, written to DIR/port once it
// accepts connections. Exits on SIGTERM, or once --parent-pid is gone.
'use strict';

const fs = require('fs');
const http = require('http');
const path = require('path');
const { parseFlags, announcePort, stopOnSignalOrOrphan } = require('./lifecycle');

// The default kinds (transient faults a client must ride out), and, only when
// named, 403 (a permanent one) and stall-request (for tests that kill a client
// mid-upload).
const DEFAULT_KINDS = ['drop', 'drop-request', '500', '503', '429', 'stall', 'stall-body', 'truncate'];
const KNOWN_KINDS = [...DEFAULT_KINDS, '403', 'stall-request'];
const CONTROL = '/__fault-proxy/schedule';

const list = s => (s ? String(s).split(',').map(x => x.trim()).filter(Boolean) : []);

// A validated schedule from command-line strings or a control request's JSON.
function makeSchedule(s) {
  const kinds = Array.isArray(s.kinds) ? s.kinds : list(s.kinds);
  const sequence = Array.isArray(s.sequence) ? s.sequence : list(s.sequence);
  const methods = (Array.isArray(s.methods) ? s.methods : list(s.methods)).map(m => m.toUpperCase());
  for (const k of [...kinds, ...sequence]) {
    if (k !== 'none' && !KNOWN_KINDS.includes(k)) throw new Error(`unknown fault kind '${k}' (known: ${KNOWN_KINDS.join(', ')})`);
  }
  const rate = Number(s.rate || 0);
  if (!(rate >= 0 && rate <= 1)) throw new Error(`rate must be 0..1, got ${s.rate}`);
  return {
    seed: Number(s.seed || 1) >>> 0,
    rate,
    kinds: kinds.length ? kinds.filter(k => k !== 'none') : DEFAULT_KINDS,
    methods,
    path_regex: s.path_regex || s['path-regex'] || '',
    sequence,
    stall_max_ms: Number(s.stall_max_ms || s['stall-max-ms'] || 600000),
  };
}

// mulberry32: a small, fast, well-mixed 32-bit PRNG; deterministic per seed.
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Scheduler {
  constructor(schedule) {
    this.schedule = schedule;
    this.random = prng(schedule.seed);
    this.regex = schedule.path_regex ? new RegExp(schedule.path_regex) : null;
    this.sequence = [...schedule.sequence];
    this.counts = Object.fromEntries(KNOWN_KINDS.map(k => [k, 0]));
  }

  static applies(kind, req) {
    const len = Number(req.headers['content-length'] || 0);
    if (kind === 'drop-request' || kind === 'stall-request') return (req.method === 'PUT' || req.method === 'POST') && len >= 2;
    if (kind === 'truncate' || kind === 'stall-body') return req.method === 'GET';
    return true;
  }

  // The fault for this request: 'none' or a kind.
  next(req) {
    const s = this.schedule;
    if (s.methods.length && !s.methods.includes(req.method)) return 'none';
    if (this.regex && !this.regex.test(req.url)) return 'none';
    if (this.sequence.length) {
      const k = this.sequence[0];
      if (k === 'none' || Scheduler.applies(k, req)) {
        this.sequence.shift();
        if (k !== 'none') this.counts[k]++;
        return k;
      }
    }
    if (!(this.random() < s.rate)) return 'none';
    let best = null;
    for (const k of s.kinds) {
      if (Scheduler.applies(k, req) && (best === null || this.counts[k] < this.counts[best])) best = k;
    }
    if (best === null) return 'none';
    this.counts[best]++;
    return best;
  }
}

const opts = parseFlags(process.argv.slice(2), ['upstream', 'dir']);
const upstream = new URL(opts.upstream);
const logPath = path.join(opts.dir, 'requests.jsonl');
let scheduler = new Scheduler(makeSchedule(opts));
let seq = 0;
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
const say = (...a) => console.log(new Date().toISOString(), ...a);

const HIDDEN = new Set(['authorization', 'x-amz-security-token']);
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer']);

function logLine(entry) {
  fs.appendFileSync(logPath, JSON.stringify(entry) + '\n');
}

function s3Error(res, status, code, message) {
  const body =
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<Error><Code>${code}</Code><Message>${message}</Message><RequestId>FAULTPROXY</RequestId></Error>`;
  res.writeHead(status, { 'Content-Type': 'application/xml', 'Content-Length': Buffer.byteLength(body) });
  return body;
}

const INJECTED = {
  500: ['InternalError', 'We encountered an internal error. Please try again. (injected by fault-proxy)'],
  503: ['SlowDown', 'Please reduce your request rate. (injected by fault-proxy)'],
  429: ['TooManyRequests', 'Too many requests. (injected by fault-proxy)'],
  403: ['AccessDenied', 'Access Denied (injected by fault-proxy)'],
};

function forwardHeaders(headers) {
  const out = {};
  for (const [k, v] of Object.entries(headers)) if (!HOP.has(k)) out[k] = v;
  return out;
}

function handle(req, res) {
  const q = req.url.indexOf('?');
  const entry = {
    seq: ++seq,
    time: new Date().toISOString(),
    method: req.method,
    path: q < 0 ? req.url : req.url.slice(0, q),
    query: q < 0 ? '' : req.url.slice(q + 1),
    headers: Object.fromEntries(Object.entries(req.headers).filter(([k]) => !HIDDEN.has(k))),
    fault: scheduler.next(req),
    upstream_status: null,
    status: null,
    body_length: null,
    bytes_sent: 0,
  };
  const fault = entry.fault;
  const client = req.socket;
  let logged = false;
  const log = () => {
    if (!logged) logLine(entry);
    logged = true;
  };

  if (INJECTED[fault]) {
    // Read the whole request first, so the client gets the answer, not a reset.
    req.resume();
    req.on('end', () => {
      const [code, message] = INJECTED[fault];
      entry.status = Number(fault);
      const body = s3Error(res, entry.status, code, message);
      entry.body_length = entry.bytes_sent = req.method === 'HEAD' ? 0 : Buffer.byteLength(body);
      log();
      res.end(req.method === 'HEAD' ? undefined : body);
    });
    return;
  }

  const up = http.request({
    host: upstream.hostname,
    port: upstream.port,
    method: req.method,
    path: req.url,
    headers: forwardHeaders(req.headers),
    agent,
  });
  let upDone = false;  // the upstream response has ended (its socket may serve others now)
  let faulted = false;  // the fault is under way: later upstream errors are ours
  up.on('error', err => {
    if (faulted) return;
    entry.error = `upstream: ${err.message}`;
    log();
    if (!res.headersSent && !client.destroyed) {
      entry.status = 502;
      res.end(s3Error(res, 502, 'BadGateway', 'fault-proxy: the upstream server failed'));
    } else {
      client.destroy();
    }
  });
  client.on('close', () => {
    if (!upDone) up.destroy();
  });

  if (fault === 'drop-request' || fault === 'stall-request') {
    const half = Math.floor(Number(req.headers['content-length']) / 2);
    let sent = 0;
    req.on('data', chunk => {
      if (sent >= half) return;
      const part = chunk.subarray(0, half - sent);
      sent += part.length;
      if (sent < half) {
        up.write(part);
        return;
      }
      entry.bytes_received = sent;
      faulted = true;
      if (fault === 'stall-request') {
        // The first half reaches the server; then nothing more is read, and both connections
        // are held until the client goes away (client 'close' above cuts the upstream one).
        req.pause();
        up.write(part, () => log());
        const timer = setTimeout(() => client.destroy(), scheduler.schedule.stall_max_ms);
        client.on('close', () => clearTimeout(timer));
        return;
      }
      log();
      // The first half reaches the server, then both connections are cut.
      up.write(part, () => {
        up.destroy();
        client.destroy();
      });
    });
    return;
  }

  req.pipe(up);
  up.on('response', upRes => {
    entry.upstream_status = upRes.statusCode;
    const headers = forwardHeaders(upRes.headers);
    if (fault === 'none') {
      entry.status = upRes.statusCode;
      entry.body_length = entry.bytes_sent = upRes.headers['content-length'] === undefined ? null : Number(upRes.headers['content-length']);
      log();
      res.writeHead(upRes.statusCode, headers);
      upRes.on('end', () => (upDone = true));
      upRes.on('error', () => client.destroy());
      upRes.pipe(res);
      return;
    }
    // Every other fault needs the whole upstream response first.
    const chunks = [];
    upRes.on('data', c => chunks.push(c));
    upRes.on('end', () => {
      upDone = true;
      faulted = true;
      const body = Buffer.concat(chunks);
      entry.body_length = body.length;
      let kind = fault;
      if ((kind === 'truncate' || kind === 'stall-body') && body.length === 0) {
        entry.fallback_from = kind;
        kind = entry.fault = kind === 'truncate' ? 'drop' : 'stall';
      }
      if (kind === 'drop') {
        log();
        client.destroy();
        return;
      }
      if (kind === 'stall' || kind === 'stall-body') {
        if (kind === 'stall-body') {
          entry.status = upRes.statusCode;
          entry.bytes_sent = Math.floor(body.length / 2);
          log();
          res.writeHead(upRes.statusCode, { ...headers, 'content-length': String(body.length) });
          res.write(body.subarray(0, entry.bytes_sent));
        } else {
          log();
        }
        const timer = setTimeout(() => client.destroy(), scheduler.schedule.stall_max_ms);
        client.on('close', () => clearTimeout(timer));
        return;
      }
      // truncate
      entry.status = upRes.statusCode;
      entry.bytes_sent = Math.floor(body.length / 2);
      log();
      res.writeHead(upRes.statusCode, { ...headers, 'content-length': String(body.length) });
      res.write(body.subarray(0, entry.bytes_sent), () => client.destroy());
    });
  });
}

function control(req, res) {
  const reply = (status, obj) => {
    const body = JSON.stringify(obj) + '\n';
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  };
  if (req.method === 'GET') return reply(200, { ...scheduler.schedule, injected: scheduler.counts, requests: seq });
  if (req.method !== 'PUT') return reply(405, { error: 'GET or PUT' });
  const chunks = [];
  req.on('data', c => chunks.push(c));
  req.on('end', () => {
    try {
      scheduler = new Scheduler(makeSchedule(JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}')));
      say(`schedule ${JSON.stringify(scheduler.schedule)}`);
      reply(200, scheduler.schedule);
    } catch (e) {
      reply(400, { error: String(e.message || e) });
    }
  });
}

async function main() {
  fs.mkdirSync(opts.dir, { recursive: true });
  const server = http.createServer((req, res) => {
    if (req.url === CONTROL) return control(req, res);
    try {
      handle(req, res);
    } catch (e) {
      say(`${req.method} ${req.url}: ${e.stack || e}`);
      req.socket.destroy();
    }
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const port = server.address().port;
  announcePort(opts.dir, port);
  say(`fault-proxy listening on 127.0.0.1:${port} -> ${opts.upstream}; schedule ${JSON.stringify(scheduler.schedule)}`);

  const stop = why => {
    say(`stopping: ${why}`);
    process.exit(0);
  };
  stopOnSignalOrOrphan(opts['parent-pid'], stop);
}

main().catch(err => {
  say(`fatal: ${err.stack || err}`);
  process.exit(1);
});
