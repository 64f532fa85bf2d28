// ws_probe.js URL [--origin ORIGIN] [--empty] [--send TEXT] [--expect REGEX]
//             [--timeout MS]: open one WebSocket to the console proxy and
// say what became of it, as one JSON line:
//
//   {"handshake": "ok"|"refused"|"error", "status": HTTP status when refused,
//    "closed": bool, "code": close code, "reason": "...",
//    "bytes": N received, "text": the first 4 KiB received (latin1),
//    "matched": bool}
//
// --empty sends empty data frames (binary and text) first, which must change
// nothing.  --send TEXT is sent (as a binary frame, "\n" and "\r" unescaped) once the
// socket is open; --expect REGEX waits until the bytes received match it
// (the serial console's answer), otherwise the probe waits for the first
// bytes or the close (a VNC server speaks first: "RFB 003.008\n"), at most
// --timeout ms (10000).  The caller judges the outcome; exit 0 unless the
// probe itself broke.

'use strict';
const WebSocket = require('ws');

function s_args (argv) {
    const a = { url: null, origin: null, empty: false, send: null, expect: null, timeout: 10000 };
    for (let i = 0; i < argv.length; i++) {
        switch (argv[i]) {
        case '--origin': a.origin = argv[++i]; break;
        case '--empty': a.empty = true; break;
        case '--send': a.send = argv[++i].replace(/\\n/g, '\n').replace(/\\r/g, '\r'); break;
        case '--expect': a.expect = new RegExp(argv[++i]); break;
        case '--timeout': a.timeout = Number(argv[++i]); break;
        default: a.url = argv[i];
        }
    }
    if (!a.url) throw new Error('usage: ws_probe.js URL [--origin O] [--send TEXT] [--expect REGEX] [--timeout MS]');
    return a;
}

const args = s_args(process.argv.slice(2));
const out = { handshake: null, status: null, closed: false, code: null, reason: '', bytes: 0, text: '', matched: false };
let received = Buffer.alloc(0);
let finished = false;

function s_finish () {
    if (finished) return;
    finished = true;
    out.text = received.subarray(0, 4096).toString('latin1');
    console.log(JSON.stringify(out));
    process.exit(0);
}

const headers = {};
if (args.origin) headers.Origin = args.origin;
const ws = new WebSocket(args.url, { headers, perMessageDeflate: false });
const timer = setTimeout(() => { ws.terminate(); s_finish(); }, args.timeout);

ws.on('unexpected-response', (req, res) => {
    out.handshake = 'refused';
    out.status = res.statusCode;
    req.destroy();
    clearTimeout(timer);
    s_finish();
});
ws.on('open', () => {
    out.handshake = 'ok';
    if (args.empty) {
        ws.send(Buffer.alloc(0), { binary: true });
        ws.send('', { binary: false });
    }
    if (args.send !== null) ws.send(Buffer.from(args.send, 'latin1'));
});
ws.on('message', (data) => {
    received = Buffer.concat([received, data]);
    out.bytes = received.length;
    if (args.expect) {
        if (args.expect.test(received.toString('latin1'))) {
            out.matched = true;
            clearTimeout(timer);
            ws.close(1000);
            s_finish();
        }
    } else {
        clearTimeout(timer);
        ws.close(1000);
        s_finish();
    }
});
ws.on('close', (code, reason) => {
    out.closed = true;
    out.code = code;
    out.reason = reason.toString();
    clearTimeout(timer);
    s_finish();
});
ws.on('error', (err) => {
    if (!out.handshake) out.handshake = 'error';
    out.reason = out.reason || String(err.message);
});
