// flood.js [--clients N] [--warmup-ms MS] [--baseline-ms MS] [--stall-ms MS]
//          [--after-ms MS] [--origin ORIGIN] URL...: N VNC clients through
// the console proxy at once, one of which stops reading for a while; do
// the others stay served?
//
// Client i opens URLs[i % URLs.length] (a /websockify?token= URL each),
// does the RFB handshake and then asks for a full-screen, non-incremental
// FramebufferUpdate each time the previous one has arrived, counting
// whole updates with their arrival times.  Nothing is counted during the
// warm-up: QEMU sends updates on a refresh timer that starts at 3 s with no
// client and halves while the screen changes, so the first seconds after
// connecting are slow whatever the path.  The last client is the stalled
// reader: after the baseline its WebSocket's socket is paused (the bytes
// pile up in the kernel, then in the proxy, as with a browser tab that
// hangs) while it goes on sending a request every 100 ms, so the proxy
// always has more for it; after the stall it reads again.
//
// Prints one JSON line: per phase, the whole updates each of the other
// clients received (min and median; for the stall also its second half,
// when every buffer toward the stalled client has long been full), how
// many sessions closed or failed, the stalled client's updates before,
// during (0: it really did not read) and after, and the bytes it found
// waiting once it read again (how much the stall held back).

'use strict';
const { websocket, connect } = require('./rfb.js');

function s_args (argv) {
    const a = { clients: 51, warmup: 3000, baseline: 2000, stall: 8000, after: 2000, origin: null, urls: [] };
    for (let i = 0; i < argv.length; i++) {
        switch (argv[i]) {
        case '--clients': a.clients = Number(argv[++i]); break;
        case '--warmup-ms': a.warmup = Number(argv[++i]); break;
        case '--baseline-ms': a.baseline = Number(argv[++i]); break;
        case '--stall-ms': a.stall = Number(argv[++i]); break;
        case '--after-ms': a.after = Number(argv[++i]); break;
        case '--origin': a.origin = argv[++i]; break;
        default: a.urls.push(argv[i]);
        }
    }
    if (!a.urls.length) throw new Error('usage: flood.js [--clients N] [--warmup-ms MS] [--baseline-ms MS] [--stall-ms MS] [--after-ms MS] [--origin O] URL...');
    return a;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const median = (v) => { const s = [...v].sort((x, y) => x - y); return s.length ? s[Math.floor(s.length / 2)] : null; };
const count = (times, from, to) => times.filter((t) => t >= from && t < to).length;

async function main () {
    const args = s_args(process.argv.slice(2));
    const errors = [];
    // The sessions open one after another, each through its whole
    // handshake: QEMU's VNC listener has a backlog of 1, and of connections
    // the proxy would make to it at once the kernel drops some after they
    // looked established; the server speaks first in RFB, so those would
    // hang without a byte.  The test is about serving 51 sessions, not
    // about opening them in the same millisecond.
    const clients = [];
    const t0 = Date.now();
    for (let i = 0; i < args.clients; i++) {
        const t = websocket(args.urls[i % args.urls.length], { origin: args.origin });
        try {
            const rfb = await connect(t, 15000);
            rfb.times = [];
            rfb.closedAt = null;
            rfb.on('close', () => { rfb.closedAt = Date.now(); });
            rfb.on('error', (err) => errors.push('client ' + i + ': ' + err.message));
            clients.push(rfb);
        } catch (err) {
            errors.push('client ' + i + ': ' + err.message);
            clients.push(null);
        }
    }
    const connectMs = Date.now() - t0;
    const live = clients.filter(Boolean);
    const stalled = clients[clients.length - 1];
    const others = clients.slice(0, -1);
    const result = { clients: args.clients, connected: live.length, connect_ms: connectMs, errors };
    if (live.length !== args.clients) {
        console.log(JSON.stringify(result));
        return;
    }

    for (const rfb of live) {
        rfb.on('update', () => {
            rfb.times.push(Date.now());
            if (!rfb.paused) rfb.request(false);
        });
        rfb.request(false);
    }
    await sleep(args.warmup);
    const tb = Date.now();
    await sleep(args.baseline);

    const t1 = Date.now();
    stalled.paused = true;
    stalled.t.pause();
    const stalledBefore = stalled.updates;
    const nagger = setInterval(() => stalled.request(false), 100);
    await sleep(args.stall);

    const t2 = Date.now();
    clearInterval(nagger);
    const stalledDuring = stalled.updates - stalledBefore;
    const receivedAtResume = stalled.received;
    stalled.paused = false;
    stalled.t.resume();
    stalled.request(false);
    await sleep(Math.min(500, args.after));
    const backlog = stalled.received - receivedAtResume;
    await sleep(Math.max(0, args.after - 500));
    const t3 = Date.now();

    const mid = t1 + (t2 - t1) / 2;
    const phase = (from, to) => {
        const n = others.map((c) => count(c.times, from, to));
        return { min: Math.min(...n), median: median(n), seconds: (to - from) / 1000 };
    };
    Object.assign(result, {
        width: stalled.width,
        height: stalled.height,
        baseline: phase(tb, t1),
        stall: phase(t1, t2),
        stall_second_half: phase(mid, t2),
        after: phase(t2, t3),
        closed: live.filter((c) => c.closedAt !== null).length,
        stalled: {
            before: stalledBefore,
            during: stalledDuring,
            after: count(stalled.times, t2, t3),
            backlog_bytes: backlog,
        },
    });
    for (const c of live) c.t.close();
    console.log(JSON.stringify(result));
}

main().then(() => process.exit(0), (err) => {
    console.log(JSON.stringify({ errors: [String(err && err.stack || err)] }));
    process.exit(1);
});
