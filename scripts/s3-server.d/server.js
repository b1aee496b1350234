// The S3 test server behind scripts/s3-server: s3rver (a file-backed fake S3)
// behind a front that checks every request the way S3 does before s3rver sees
// it. s3rver itself accepts any SigV4 signature and unsigned requests, and
// silently ignores Object Lock headers; the front closes those gaps:
//  - SigV4 (Authorization header) is recomputed with AWS's own signer
//    (@smithy/signature-v4) from the secret key given here: a wrong
//    signature, scope, key, unsigned x-amz-* header or a stale date is
//    refused with S3's error codes, and SignatureDoesNotMatch carries the
//    CanonicalRequest and StringToSign the server computed;
//  - a hex x-amz-content-sha256 must match the body (XAmzContentSHA256Mismatch),
//    and so must a Content-MD5 (BadDigest);
//  - "Range: bytes=-N" means the last N bytes (s3rver reads it as bytes 0-N);
//  - CompleteMultipartUpload checks part order, ETags and the 5 MiB minimum
//    part size (InvalidPartOrder, InvalidPart, EntityTooSmall);
//  - AbortMultipartUpload (405 in s3rver) forgets the upload: its id then gets
//    NoSuchUpload, as a completed upload's does;
//  - aws-chunked bodies (STREAMING-AWS4-HMAC-SHA256-PAYLOAD, what minio-go and
//    so restic send over plain HTTP) have every chunk signature verified and
//    reach s3rver decoded;
//  - unsigned requests are refused (AccessDenied); query-string (presigned)
//    signing and the other streaming variants (trailers) are NotImplemented;
//  - Object Lock and versioning requests are refused with NotImplemented
//    instead of being half-applied, so a test can never believe an object is
//    locked when it is not;
//  - per-key permissions, as IAM would enforce them: besides the main key
//    (everything allowed), <dir>/keys (written by `s3-server add-key`, mode
//    600, re-read when it changes) lists more keys, one a line:
//    "ROLE ACCESS_KEY SECRET_KEY". ROLE is read-only (s3:ListBucket,
//    s3:GetObject, ...), append-only (read-only + s3:PutObject, which covers
//    multipart uploads; no delete of anything, not even an abort), full, or
//    a comma-separated list of IAM actions, each optionally limited to
//    resources by "@bucket/key-glob" ("s3:DeleteObject@b/repo/locks/*").
//    A request its key may not make gets 403 AccessDenied, worded like IAM's.
// Both servers listen on 127.0.0.1 on ports the kernel picks; the front's
// port is written to <dir>/port once it accepts connections.
//
// Usage: S3_SERVER_SECRET_KEY=SK node --openssl-legacy-provider server.js --dir DIR
//        --tools TOOLS_DIR --access-key AK [--region us-east-1] [--parent-pid PID]
// With --parent-pid the server exits by itself once that process is gone.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const path = require('path');
const { createRequire } = require('module');
const { parseFlags, announcePort, stopOnSignalOrOrphan } = require('./lifecycle');

function parseArgs(argv) {
  const out = parseFlags(argv, ['dir', 'tools', 'access-key']);
  out['secret-key'] = process.env.S3_SERVER_SECRET_KEY;
  if (!out['secret-key']) throw new Error('S3_SERVER_SECRET_KEY is required');
  delete process.env.S3_SERVER_SECRET_KEY;
  out.region = out.region || 'us-east-1';
  return out;
}

const opts = parseArgs(process.argv.slice(2));
const toolRequire = createRequire(path.join(opts.tools, 'package.json'));
const S3rver = toolRequire('s3rver');
const AWSAccount = toolRequire('s3rver/lib/models/account');
const { SignatureV4, getCanonicalHeaders } = toolRequire('@smithy/signature-v4');
const { Hash } = toolRequire('@smithy/hash-node');

const log = (...a) => console.log(new Date().toISOString(), ...a);

// s3rver checks that a request's access key exists (not its signature): give
// it ours instead of its built-in S3RVER/S3RVER pair.
AWSAccount.DUMMY_ACCOUNT.revokeAccessKey('S3RVER');
AWSAccount.DUMMY_ACCOUNT.createKeyPair(opts['access-key'], opts['secret-key']);

// Roles: the IAM actions each allows (null: all). Actions are IAM's names
// (see requestAction); a role may also be a list of them (parseRole).
const READ_ACTIONS = ['s3:ListAllMyBuckets', 's3:ListBucket', 's3:GetBucketLocation', 's3:GetObject'];
const ROLES = {
  full: null,
  'read-only': READ_ACTIONS,
  'append-only': [...READ_ACTIONS, 's3:PutObject'],
};

// A role as a list of { action, glob } (glob: a RegExp over "bucket/key" or
// "bucket", or null for any resource), or null for everything.
function parseRole(role) {
  if (role in ROLES) return ROLES[role] && ROLES[role].map(action => ({ action, glob: null }));
  return role.split(',').map(entry => {
    const at = entry.indexOf('@');
    const action = at < 0 ? entry : entry.slice(0, at);
    if (!/^s3:[A-Za-z*]+$/.test(action)) throw new Error(`role ${role}: bad action ${action}`);
    if (at < 0) return { action, glob: null };
    const pattern = entry.slice(at + 1).replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*');
    return { action, glob: new RegExp(`^${pattern}$`) };
  });
}

// access key -> { secret, role, allowed } for the main key and <dir>/keys,
// re-read whenever that file changes (add-key replaces it by a rename).
const keys = new Map([[opts['access-key'], { secret: opts['secret-key'], role: 'full', allowed: null }]]);
const keysFile = path.join(opts.dir, 'keys');
let keysStamp = '';
function currentKeys() {
  let st;
  try {
    st = fs.statSync(keysFile);
  } catch {
    return keys;
  }
  const stamp = `${st.ino}:${st.size}:${st.mtimeMs}`;
  if (stamp === keysStamp) return keys;
  keysStamp = stamp;
  for (const line of fs.readFileSync(keysFile, 'utf8').split('\n')) {
    const [role, accessKey, secret] = line.trim().split(/\s+/);
    if (!role || role.startsWith('#') || keys.has(accessKey)) continue;
    try {
      if (!secret) throw new Error('want "ROLE ACCESS_KEY SECRET_KEY"');
      keys.set(accessKey, { secret, role, allowed: parseRole(role) });
      AWSAccount.DUMMY_ACCOUNT.createKeyPair(accessKey, secret);
      log(`key ${accessKey} added (role ${role})`);
    } catch (err) {
      log(`${keysFile}: ignoring the line of key ${accessKey}: ${err.message}`);
    }
  }
  return keys;
}

const xmlEscape = s =>
  String(s).replace(/[<>&'"]/g, c => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]);

class S3Error extends Error {
  constructor(status, code, message, extra = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.extra = extra;
  }
}

function sendError(res, err, method) {
  const requestId = crypto.randomBytes(8).toString('hex').toUpperCase();
  const fields = Object.entries(err.extra)
    .map(([k, v]) => `<${k}>${xmlEscape(v)}</${k}>`)
    .join('');
  const body =
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<Error><Code>${err.code}</Code><Message>${xmlEscape(err.message)}</Message>${fields}` +
    `<RequestId>${requestId}</RequestId></Error>`;
  res.writeHead(err.status, {
    'Content-Type': 'application/xml',
    'Content-Length': Buffer.byteLength(body),
    'x-amz-request-id': requestId,
  });
  res.end(method === 'HEAD' ? undefined : body);
}

// RFC 3986 encoding as SigV4 wants it: everything but A-Z a-z 0-9 - . _ ~.
const uriEncode = s =>
  encodeURIComponent(s).replace(/[!'()*]/g, c => '%' + c.charCodeAt(0).toString(16).toUpperCase());

function decodeStrict(s, what) {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new S3Error(400, 'InvalidURI', `Couldn't parse the specified ${what}.`);
  }
}

// Canonical URI as S3 computes it: each path segment decoded once and
// re-encoded; "/" stays.
const canonicalPath = rawPath =>
  rawPath
    .split('/')
    .map(seg => uriEncode(decodeStrict(seg, 'URI')))
    .join('/');

// The query as a map of decoded names to decoded values (arrays for repeats);
// "?uploads" gives { uploads: '' }.
function parseQuery(raw) {
  const q = {};
  if (!raw) return q;
  for (const part of raw.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const k = decodeStrict(eq < 0 ? part : part.slice(0, eq), 'query');
    const v = decodeStrict(eq < 0 ? '' : part.slice(eq + 1), 'query');
    if (k in q) q[k] = [].concat(q[k], v);
    else q[k] = v;
  }
  return q;
}

const signer = new SignatureV4({
  credentials: { accessKeyId: opts['access-key'], secretAccessKey: opts['secret-key'] },
  region: opts.region,
  service: 's3',
  sha256: Hash.bind(null, 'sha256'),
  uriEscapePath: false,
  applyChecksum: false,
});

const AUTH_RE = /^AWS4-HMAC-SHA256 +Credential=([^,]+), *SignedHeaders=([^,]+), *Signature=([0-9a-f]{64})$/;

async function verifySignature(req, rawPath, query) {
  const auth = req.headers['authorization'];
  const hasQueryAuth = 'X-Amz-Algorithm' in query || 'Signature' in query;
  if (!auth) {
    if (hasQueryAuth) {
      throw new S3Error(501, 'NotImplemented', 'Query-string (presigned) authentication is not supported by this test server.');
    }
    throw new S3Error(403, 'AccessDenied', 'Access Denied (the request is not signed)');
  }
  if (auth.startsWith('AWS ')) {
    throw new S3Error(400, 'InvalidRequest', 'Signature version 2 is not accepted; use AWS4-HMAC-SHA256.');
  }
  const m = AUTH_RE.exec(auth);
  if (!m) {
    throw new S3Error(400, 'AuthorizationHeaderMalformed', 'The authorization header is malformed.', {
      AuthorizationHeader: auth,
    });
  }
  const [, credential, signedHeaderList, signatureProvided] = m;
  const [accessKey, scopeDate, scopeRegion, scopeService, terminator, ...rest] = credential.split('/');
  if (rest.length || terminator !== 'aws4_request' || scopeService !== 's3') {
    throw new S3Error(400, 'AuthorizationHeaderMalformed', `The authorization header is malformed; the Credential is mal-formed: ${credential}`);
  }
  const key = currentKeys().get(accessKey);
  if (!key) {
    throw new S3Error(403, 'InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.', {
      AWSAccessKeyId: accessKey,
    });
  }
  if (scopeRegion !== opts.region) {
    throw new S3Error(400, 'AuthorizationHeaderMalformed', `The authorization header is malformed; the region '${scopeRegion}' is wrong; expecting '${opts.region}'`, {
      Region: opts.region,
    });
  }
  const longDate = req.headers['x-amz-date'];
  if (!longDate || !/^\d{8}T\d{6}Z$/.test(longDate)) {
    throw new S3Error(403, 'AccessDenied', 'AWS authentication requires a valid x-amz-date header');
  }
  if (longDate.slice(0, 8) !== scopeDate) {
    throw new S3Error(400, 'AuthorizationHeaderMalformed', `The authorization header is malformed; Invalid credential date "${scopeDate}". This date is not the same as X-Amz-Date: "${longDate.slice(0, 8)}".`);
  }
  const requestTime = Date.parse(
    `${longDate.slice(0, 4)}-${longDate.slice(4, 6)}-${longDate.slice(6, 8)}T${longDate.slice(9, 11)}:${longDate.slice(11, 13)}:${longDate.slice(13, 15)}Z`,
  );
  if (!(Math.abs(Date.now() - requestTime) <= 15 * 60 * 1000)) {
    throw new S3Error(403, 'RequestTimeTooSkewed', 'The difference between the request time and the current time is too large.', {
      RequestTime: longDate,
      ServerTime: new Date().toISOString(),
    });
  }
  const payloadHash = req.headers['x-amz-content-sha256'];
  if (!payloadHash) {
    throw new S3Error(400, 'InvalidRequest', 'Missing required header for this request: x-amz-content-sha256');
  }
  if (payloadHash.startsWith('STREAMING-') && payloadHash !== STREAMING_SIGNED) {
    throw new S3Error(501, 'NotImplemented', `x-amz-content-sha256 ${payloadHash} is not supported by this test server (only ${STREAMING_SIGNED}).`);
  }
  if (payloadHash !== 'UNSIGNED-PAYLOAD' && payloadHash !== STREAMING_SIGNED && !/^[0-9a-f]{64}$/.test(payloadHash)) {
    throw new S3Error(400, 'InvalidArgument', 'x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, or a valid sha256 value.', {
      ArgumentName: 'x-amz-content-sha256',
      ArgumentValue: payloadHash,
    });
  }
  const signed = signedHeaderList.split(';');
  const signedSet = new Set(signed);
  if (!signedSet.has('host')) {
    throw new S3Error(400, 'AuthorizationHeaderMalformed', 'The authorization header is malformed; SignedHeaders must include host.');
  }
  const unsigned = Object.keys(req.headers).filter(h => h.startsWith('x-amz-') && !signedSet.has(h));
  if (unsigned.length) {
    throw new S3Error(403, 'AccessDenied', 'There were headers present in the request which were not signed', {
      HeadersNotSigned: unsigned.join(', '),
    });
  }
  const headers = {};
  for (const h of signed) if (h in req.headers) headers[h] = req.headers[h];
  const canonicalHeaders = getCanonicalHeaders({ headers }, undefined, signedSet);
  const request = { method: req.method, path: canonicalPath(rawPath), query, headers };
  const canonicalRequest = signer.createCanonicalRequest(request, canonicalHeaders, payloadHash);
  const scope = `${scopeDate}/${scopeRegion}/s3/aws4_request`;
  const stringToSign = await signer.createStringToSign(longDate, scope, canonicalRequest, 'AWS4-HMAC-SHA256');
  const expected = await signer.getSignature(
    longDate,
    scope,
    signer.getSigningKey({ accessKeyId: accessKey, secretAccessKey: key.secret }, scopeRegion, scopeDate, 's3'),
    canonicalRequest,
  );
  if (expected !== signatureProvided) {
    throw new S3Error(403, 'SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided. Check your key and signing method.', {
      AWSAccessKeyId: accessKey,
      StringToSign: stringToSign,
      SignatureProvided: signatureProvided,
      CanonicalRequest: canonicalRequest,
    });
  }
  // What the chunk signatures of an aws-chunked body chain from.
  req.sigv4 = { seed: signatureProvided, longDate, scope, scopeDate, region: scopeRegion, secret: key.secret };
  return { payloadHash, accessKey, key };
}

// The IAM actions a request needs, each as { action, resource } with
// resource "bucket" or "bucket/key" (decoded), as S3 authorizes them.
function requestActions(req, rawPath, query, body) {
  const segments = rawPath.split('/').filter(Boolean).map(seg => decodeStrict(seg, 'URI'));
  const m = req.method;
  if (segments.length === 0) return [{ action: m === 'GET' ? 's3:ListAllMyBuckets' : 's3:Unknown', resource: '*' }];
  const bucket = segments[0];
  if (segments.length === 1) {
    if (m === 'POST' && 'delete' in query) {
      // DeleteObjects: s3:DeleteObject on every key listed.
      const keysListed = [...body.toString('utf8').matchAll(/<Key>([\s\S]*?)<\/Key>/g)].map(k => xmlUnescape(k[1]));
      return keysListed.map(k => ({ action: 's3:DeleteObject', resource: `${bucket}/${k}` }));
    }
    const action =
      m === 'PUT' ? 's3:CreateBucket'
      : m === 'DELETE' ? 's3:DeleteBucket'
      : m === 'GET' && 'location' in query ? 's3:GetBucketLocation'
      : m === 'GET' && 'uploads' in query ? 's3:ListBucketMultipartUploads'
      : m === 'GET' || m === 'HEAD' ? 's3:ListBucket'
      : 's3:Unknown';
    return [{ action, resource: bucket }];
  }
  const resource = segments.join('/');
  if (m === 'GET' && 'uploadId' in query) return [{ action: 's3:ListMultipartUploadParts', resource }];
  if (m === 'GET' || m === 'HEAD') return [{ action: 's3:GetObject', resource }];
  if (m === 'DELETE') return [{ action: 'uploadId' in query ? 's3:AbortMultipartUpload' : 's3:DeleteObject', resource }];
  if (m === 'PUT' || (m === 'POST' && ('uploads' in query || 'uploadId' in query))) {
    const out = [{ action: 's3:PutObject', resource }];
    const source = req.headers['x-amz-copy-source'];
    if (m === 'PUT' && source) out.push({ action: 's3:GetObject', resource: decodeStrict(source.replace(/^\//, ''), 'copy source') });
    return out;
  }
  return [{ action: 's3:Unknown', resource }];
}

const xmlUnescape = s =>
  s.replace(/&(lt|gt|amp|apos|quot);/g, (_, e) => ({ lt: '<', gt: '>', amp: '&', apos: "'", quot: '"' })[e]);

// Throws AccessDenied, worded like IAM's, for the first action `key` may not take.
function authorize(req, rawPath, query, body, accessKey, key) {
  if (key.allowed === null) return;
  for (const { action, resource } of requestActions(req, rawPath, query, body)) {
    const ok = key.allowed.some(a => (a.action === action || a.action === 's3:*') && (!a.glob || a.glob.test(resource)));
    if (!ok) {
      throw new S3Error(403, 'AccessDenied',
        `User: arn:aws:iam::000000000000:user/${accessKey} is not authorized to perform: ${action} on resource: ` +
        `"arn:aws:s3:::${resource}" because no identity-based policy allows the ${action} action (role ${key.role})`);
    }
  }
}

// aws-chunked bodies (x-amz-content-sha256: STREAMING-AWS4-HMAC-SHA256-PAYLOAD; minio-go, so
// restic, sends them for every PUT over plain HTTP). The body is a series of
//   <hex size>;chunk-signature=<64 hex>\r\n<data>\r\n
// ending with a 0-size chunk. Each chunk's signature is HMAC-SHA256 with the request's
// signing key over "AWS4-HMAC-SHA256-PAYLOAD\n<date>\n<scope>\n<previous signature>\n
// <sha256 of nothing>\n<sha256 of the chunk>", the first one chaining from the Authorization
// header's signature (AWS: "Signature Calculations for the Authorization Header: Transferring
// Payload in Multiple Chunks"). Verified like S3 does; returns the decoded payload.
const STREAMING_SIGNED = 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD';
const EMPTY_SHA256 = crypto.createHash('sha256').digest('hex');

function signingKey(secret, scopeDate, region) {
  const hmac = (key, data) => crypto.createHmac('sha256', key).update(data).digest();
  return hmac(hmac(hmac(hmac(`AWS4${secret}`, scopeDate), region), 's3'), 'aws4_request');
}

function decodeAwsChunked(req, body) {
  const { seed, longDate, scope, scopeDate, region, secret } = req.sigv4;
  const key = signingKey(secret, scopeDate, region);
  const chunks = [];
  let prev = seed;
  let pos = 0;
  const malformed = why => new S3Error(400, 'IncompleteBody', `The aws-chunked body is malformed: ${why}.`);
  for (;;) {
    const eol = body.indexOf('\r\n', pos);
    if (eol < 0) throw malformed('a chunk header has no CRLF');
    const m = /^([0-9a-fA-F]+);chunk-signature=([0-9a-f]{64})$/.exec(body.toString('latin1', pos, eol));
    if (!m) throw malformed('bad chunk header');
    const size = parseInt(m[1], 16);
    const start = eol + 2;
    if (start + size + 2 > body.length || body.toString('latin1', start + size, start + size + 2) !== '\r\n') {
      throw malformed('a chunk is shorter than its header says');
    }
    const data = body.subarray(start, start + size);
    const stringToSign = ['AWS4-HMAC-SHA256-PAYLOAD', longDate, scope, prev, EMPTY_SHA256,
      crypto.createHash('sha256').update(data).digest('hex')].join('\n');
    const sig = crypto.createHmac('sha256', key).update(stringToSign).digest('hex');
    if (sig !== m[2]) {
      throw new S3Error(403, 'SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided (aws-chunked chunk signature).', {
        StringToSign: stringToSign,
        SignatureProvided: m[2],
      });
    }
    prev = sig;
    pos = start + size + 2;
    if (size === 0) break;
    chunks.push(data);
  }
  if (pos !== body.length) throw malformed('bytes after the final chunk');
  const decoded = Buffer.concat(chunks);
  const declared = req.headers['x-amz-decoded-content-length'];
  if (declared === undefined || Number(declared) !== decoded.length) {
    throw new S3Error(400, 'IncompleteBody', `x-amz-decoded-content-length is ${declared}, the decoded body has ${decoded.length} bytes.`);
  }
  return decoded;
}

// What s3rver would accept but not honour.
function refuseUnsupported(req, rawPath, query) {
  const segments = rawPath.split('/').filter(Boolean);
  const lockHeaders = Object.keys(req.headers).filter(
    h => h.startsWith('x-amz-object-lock-') || (h === 'x-amz-bucket-object-lock-enabled' && /^true$/i.test(req.headers[h])),
  );
  if (lockHeaders.length) {
    throw new S3Error(501, 'NotImplemented', `Object Lock is not supported by this test server (s3rver); refused header(s): ${lockHeaders.join(', ')}`);
  }
  for (const sub of ['object-lock', 'retention', 'legal-hold', 'versioning', 'versions', 'versionId']) {
    if (sub in query) {
      throw new S3Error(501, 'NotImplemented', `?${sub} is not supported by this test server (s3rver has no versioning or Object Lock).`);
    }
  }
  if ('x-amz-bypass-governance-retention' in req.headers) {
    throw new S3Error(501, 'NotImplemented', 'x-amz-bypass-governance-retention: this test server has no Object Lock.');
  }
  return segments;
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', c => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

// One request to s3rver; resolves to { status, headers, bytesOut } and pipes the body to `res`
// if given (bytesOut: the response body's size).
function forward(port, req, headers, body, res) {
  return new Promise((resolve, reject) => {
    const up = http.request({ host: '127.0.0.1', port, method: req.method, path: req.url, headers }, upRes => {
      let bytesOut = 0;
      upRes.on('data', c => {
        bytesOut += c.length;
      });
      if (res) {
        res.writeHead(upRes.statusCode, upRes.headers);
        upRes.pipe(res);
      } else {
        upRes.resume();
      }
      upRes.on('end', () => resolve({ status: upRes.statusCode, headers: upRes.headers, bytesOut }));
      upRes.on('error', reject);
    });
    up.on('error', reject);
    up.end(body);
  });
}

// s3rver reads "Range: bytes=-N" (the last N bytes) as bytes 0-N: ask it for the size and
// send the equivalent "bytes=START-END".
async function fixSuffixRange(port, req, headers) {
  const m = /^bytes=-(\d+)$/.exec(headers['range'] || '');
  if (!m || (req.method !== 'GET' && req.method !== 'HEAD')) return;
  const head = await forward(port, { method: 'HEAD', url: req.url }, { host: headers.host }, undefined, null);
  if (head.status !== 200) return;  // let s3rver give its 404
  const size = Number(head.headers['content-length']);
  const n = Number(m[1]);
  if (n === 0) {
    throw new S3Error(416, 'InvalidRange', 'The requested range is not satisfiable', { RangeRequested: headers['range'] });
  }
  if (size === 0) delete headers['range'];
  else headers['range'] = `bytes=${Math.max(0, size - n)}-${size - 1}`;
}

// s3rver completes any list of parts. Check what S3 checks: parts listed in ascending order,
// each uploaded with that ETag, every one but the last at least 5 MiB.
const uploads = new Map();  // uploadId -> Map(partNumber -> { size, etag })
const aborted = new Set();  // uploadIds aborted or completed
const MIN_PART = 5 * 1024 * 1024;

function checkComplete(query, body) {
  const parts = uploads.get(query.uploadId) || new Map();
  const listed = [...body.toString('utf8').matchAll(/<Part>([\s\S]*?)<\/Part>/g)].map(m => ({
    number: Number((/<PartNumber>\s*(\d+)\s*<\/PartNumber>/.exec(m[1]) || [])[1]),
    etag: ((/<ETag>([\s\S]*?)<\/ETag>/.exec(m[1]) || [])[1] || '').replace(/&quot;|"/g, '').trim(),
  }));
  if (!listed.length) return;  // s3rver answers MalformedXML
  listed.forEach((p, i) => {
    if (i > 0 && p.number <= listed[i - 1].number) {
      throw new S3Error(400, 'InvalidPartOrder', 'The list of parts was not in ascending order. The parts list must be specified in order by part number.');
    }
    const have = parts.get(p.number);
    if (!have || have.etag !== p.etag) {
      throw new S3Error(400, 'InvalidPart', "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.", {
        PartNumber: p.number,
        ETag: p.etag,
      });
    }
    if (i < listed.length - 1 && have.size < MIN_PART) {
      throw new S3Error(400, 'EntityTooSmall', 'Your proposed upload is smaller than the minimum allowed object size.', {
        PartNumber: p.number,
        ProposedSize: have.size,
        MinSizeAllowed: MIN_PART,
      });
    }
  });
}

async function main() {
  const dataDir = path.join(opts.dir, 'data');
  fs.mkdirSync(dataDir, { recursive: true });
  const backend = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: false,
    directory: dataDir,
    allowMismatchedSignatures: false,
    vhostBuckets: false,
  });
  const backendAddr = await backend.run();
  log(`s3rver ${toolRequire('s3rver/package.json').version} listening on 127.0.0.1:${backendAddr.port} (backend)`);

  const front = http.createServer(async (req, res) => {
    const q = req.url.indexOf('?');
    const rawPath = q < 0 ? req.url : req.url.slice(0, q);
    let who = '';  // " (key AK)" in log lines once the signature is verified
    try {
      const query = parseQuery(q < 0 ? '' : req.url.slice(q + 1));
      const { payloadHash, accessKey, key } = await verifySignature(req, rawPath, query);
      who = ` (key ${accessKey})`;
      refuseUnsupported(req, rawPath, query);
      let body = await readBody(req);
      const chunked = payloadHash === STREAMING_SIGNED;
      if (chunked) body = decodeAwsChunked(req, body);
      authorize(req, rawPath, query, body, accessKey, key);
      if (payloadHash !== 'UNSIGNED-PAYLOAD' && !chunked) {
        const actual = crypto.createHash('sha256').update(body).digest('hex');
        if (actual !== payloadHash) {
          throw new S3Error(400, 'XAmzContentSHA256Mismatch', "The provided 'x-amz-content-sha256' header does not match what was computed.", {
            ClientComputedContentSHA256: payloadHash,
            S3ComputedContentSHA256: actual,
          });
        }
      }
      // s3rver does not check Content-MD5 (S3 requires it on Object Lock PUTs).
      const contentMd5 = req.headers['content-md5'];
      if (contentMd5 !== undefined) {
        if (!/^[A-Za-z0-9+/]{22}==$/.test(contentMd5)) {
          throw new S3Error(400, 'InvalidDigest', 'The Content-MD5 you specified was invalid.', { 'Content-MD5': contentMd5 });
        }
        const actual = crypto.createHash('md5').update(body).digest('base64');
        if (actual !== contentMd5) {
          throw new S3Error(400, 'BadDigest', 'The Content-MD5 you specified did not match what we received.', {
            ExpectedDigest: contentMd5,
            CalculatedDigest: actual,
          });
        }
      }
      const headers = { ...req.headers, 'content-length': String(body.length) };
      delete headers['transfer-encoding'];
      delete headers['expect'];
      if (chunked) {
        // s3rver gets the decoded payload, as S3 stores it: no aws-chunked encoding is kept.
        headers['x-amz-content-sha256'] = crypto.createHash('sha256').update(body).digest('hex');
        delete headers['x-amz-decoded-content-length'];
        const enc = String(headers['content-encoding'] || '').split(',').map(e => e.trim()).filter(e => e && e !== 'aws-chunked');
        if (enc.length) headers['content-encoding'] = enc.join(',');
        else delete headers['content-encoding'];
      }
      await fixSuffixRange(backendAddr.port, req, headers);
      const isObject = rawPath.split('/').filter(Boolean).length >= 2;
      if (isObject && 'uploadId' in query && aborted.has(query.uploadId)) {
        throw new S3Error(404, 'NoSuchUpload', 'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.', {
          UploadId: query.uploadId,
        });
      }
      if (isObject && req.method === 'DELETE' && 'uploadId' in query) {
        // AbortMultipartUpload (s3rver answers 405): forget the upload; its parts stay in
        // s3rver's data directory, unreachable.
        aborted.add(query.uploadId);
        uploads.delete(query.uploadId);
        res.writeHead(204);
        res.end();
        log(`${req.method} ${req.url} -> 204 (aborted by the front)${who}`);
        return;
      }
      if (isObject && req.method === 'POST' && 'uploadId' in query) checkComplete(query, body);
      const up = await forward(backendAddr.port, req, headers, body, res);
      if (isObject && req.method === 'PUT' && 'uploadId' in query && 'partNumber' in query && up.status === 200) {
        if (!uploads.has(query.uploadId)) uploads.set(query.uploadId, new Map());
        uploads.get(query.uploadId).set(Number(query.partNumber), {
          size: body.length,
          etag: String(up.headers['etag'] || '').replace(/"/g, ''),
        });
      }
      if (isObject && req.method === 'POST' && 'uploadId' in query && up.status === 200) {
        uploads.delete(query.uploadId);
        aborted.add(query.uploadId);
      }
      // "in": payload bytes received (decoded, for aws-chunked), "out": response body bytes.
      log(`${req.method} ${req.url} -> ${up.status} in=${body.length} out=${up.bytesOut}${who}`);
    } catch (err) {
      if (!(err instanceof S3Error)) {
        log(`${req.method} ${req.url} internal error: ${err.stack || err}`);
        err = new S3Error(500, 'InternalError', String(err.message || err));
      } else {
        log(`${req.method} ${req.url} -> ${err.status} ${err.code}${who}: ${err.message}`);
        if (err.extra.CanonicalRequest) log(`canonical request:\n${err.extra.CanonicalRequest}`);
      }
      if (!res.headersSent) {
        // Drain the body so the client sees the error rather than a reset.
        req.resume();
        sendError(res, err, req.method);
      } else {
        res.destroy();
      }
    }
  });
  await new Promise((resolve, reject) => {
    front.once('error', reject);
    front.listen(0, '127.0.0.1', resolve);
  });
  const port = front.address().port;
  announcePort(opts.dir, port);
  log(`front listening on 127.0.0.1:${port} (region ${opts.region}, access key ${opts['access-key']})`);

  let stopping = false;
  const stop = why => {
    if (stopping) return;
    stopping = true;
    log(`stopping: ${why}`);
    front.close();
    backend.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  };
  // The event loop stays alive through the servers only.
  stopOnSignalOrOrphan(opts['parent-pid'], stop);
}

main().catch(err => {
  log(`fatal: ${err.stack || err}`);
  process.exit(1);
});
