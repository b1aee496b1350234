// Shared by the test servers in this directory (server.js, fault-proxy.js):
// their command lines, how they announce their port, and when they stop.
'use strict';

const fs = require('fs');
const path = require('path');

// "--name value" pairs -> { name: value }; throws on a stray argument or a
// missing required flag.
function parseFlags(argv, required = []) {
  const out = {};
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--') || i + 1 >= argv.length) throw new Error(`bad argument ${argv[i]}`);
    out[argv[i].slice(2)] = argv[i + 1];
  }
  for (const k of required) {
    if (!out[k]) throw new Error(`--${k} is required`);
  }
  return out;
}

// Writes DIR/port atomically (a reader never sees half a number): the sign
// that the server accepts connections.
function announcePort(dir, port) {
  const portFile = path.join(dir, 'port');
  fs.writeFileSync(portFile + '.tmp', `${port}\n`);
  fs.renameSync(portFile + '.tmp', portFile);
}

// Calls stop(why) on SIGTERM and SIGINT, and once process `parentPid` is
// gone (checked every second, without keeping the event loop alive; 0 or
// absent: no such check).
function stopOnSignalOrOrphan(parentPid, stop) {
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  const parent = Number(parentPid || 0);
  if (parent > 0) {
    setInterval(() => {
      try {
        process.kill(parent, 0);
      } catch (e) {
        if (e.code === 'ESRCH') stop(`parent ${parent} is gone`);
      }
    }, 1000).unref();
  }
}

module.exports = { parseFlags, announcePort, stopOnSignalOrOrphan };
