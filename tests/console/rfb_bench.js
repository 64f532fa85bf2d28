// rfb_bench.js TARGET [--rtt N] [--connects N] [--clients C] [--seconds S]:
// timings of one guest's VNC server, reached at TARGET: "tcp:HOST:PORT"
// (directly) or a ws:// URL (through the console proxy).  bench/console.sh
// runs it on both and prints the ratios.  Prints one JSON line:
//
//   connect_ms      median of N fresh connections, from the connect call to
//                   ServerInit (through the proxy: WebSocket handshake,
//                   token check with the conductor, TCP connection to the
//                   guest, then the RFB handshake)
//   rtt_ms, rtt_p90_ms   median and 90th percentile of N round trips on one
//                   session: a 1x1 non-incremental FramebufferUpdateRequest,
//                   answered by QEMU at once with an ExtendedDesktopSize
//                   update (see rfb.js: its pixel updates wait for a refresh
//                   timer, which would measure the timer, not the path)
//   mb_s            bytes received per second (MB = 10^6) by C sessions at
//                   once, each asking for the next full-screen Raw update as
//                   soon as the previous one is in, for S seconds
//   updates_s       whole full-screen updates per second, all sessions
//
// A target that refuses or breaks makes it exit 1 with {"error": ...}.

'use strict';
const { tcp, websocket, connect } = require('./rfb.js');

function s_args (argv) {
    const a = { target: null, rtt: 500, connects: 20, clients: 16, seconds: 5, origin: null };
    for (let i = 0; i < argv.length; i++) {
        switch (argv[i]) {
        case '--rtt': a.rtt = Number(argv[++i]); break;
        case '--connects': a.connects = Number(argv[++i]); break;
        case '--clients': a.clients = Number(argv[++i]); break;
        case '--seconds': a.seconds = Number(argv[++i]); break;
        case '--origin': a.origin = argv[++i]; break;
        default: a.target = argv[i];
        }
    }
    if (!a.target) throw new Error('usage: rfb_bench.js tcp:HOST:PORT|ws://... [--rtt N] [--connects N] [--clients C] [--seconds S] [--origin O]');
    return a;
}

const args = s_args(process.argv.slice(2));
const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;
const sleep = (n) => new Promise((resolve) => setTimeout(resolve, n));
const quantile = (v, q) => { const s = [...v].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor(q * s.length))]; };

function s_transport () {
    if (args.target.startsWith('tcp:')) {
        const [, host, port] = args.target.split(':');
        return tcp(host, Number(port));
    }
    return websocket(args.target, { origin: args.origin });
}

async function s_connect_ms () {
    const times = [];
    for (let i = 0; i < args.connects; i++) {
        const t0 = process.hrtime.bigint();
        const rfb = await connect(s_transport(), 15000);
        times.push(ms(t0));
        rfb.t.close();
        // QEMU counts a client until it has seen it go.
        await sleep(20);
    }
    return quantile(times, 0.5);
}

async function s_rtt () {
    const rfb = await connect(s_transport(), 15000, { extDesktopSize: true });
    const once = () => new Promise((resolve) => {
        const t0 = process.hrtime.bigint();
        const on = (u) => { if (u.ext) { rfb.off('update', on); resolve(ms(t0)); } };
        rfb.on('update', on);
        rfb.request(false, 1, 1);
    });
    for (let i = 0; i < 20; i++) await once();          // warm-up
    const times = [];
    for (let i = 0; i < args.rtt; i++) times.push(await once());
    rfb.t.close();
    return { median: quantile(times, 0.5), p90: quantile(times, 0.9) };
}

async function s_throughput () {
    // One after another: QEMU's VNC listener has a backlog of 1, and of
    // connections made at once some are dropped by the kernel after the
    // client saw them established; the server speaks first in RFB, so such
    // a client would wait forever.
    const sessions = [];
    for (let i = 0; i < args.clients; i++) sessions.push(await connect(s_transport(), 15000));
    let counting = false, bytes = 0, updates = 0;
    for (const rfb of sessions) {
        rfb.on('update', (u) => {
            if (counting) { bytes += u.bytes; updates++; }
            rfb.request(false);
        });
        rfb.request(false);
    }
    await sleep(500);                                   // every session going
    counting = true;
    const t0 = process.hrtime.bigint();
    await sleep(args.seconds * 1000);
    counting = false;
    const seconds = ms(t0) / 1000;
    for (const rfb of sessions) rfb.t.close();
    return { mb_s: bytes / 1e6 / seconds, updates_s: updates / seconds, width: sessions[0].width, height: sessions[0].height };
}

async function main () {
    const connectMs = await s_connect_ms();
    const rtt = await s_rtt();
    const tp = await s_throughput();
    console.log(JSON.stringify({
        target: args.target.replace(/token=[0-9a-f]+/, 'token=...'),
        connect_ms: connectMs,
        rtt_ms: rtt.median,
        rtt_p90_ms: rtt.p90,
        clients: args.clients,
        mb_s: tp.mb_s,
        updates_s: tp.updates_s,
        screen: tp.width + 'x' + tp.height,
    }));
}

main().then(() => process.exit(0), (err) => {
    console.log(JSON.stringify({ error: String(err && err.message || err) }));
    process.exit(1);
});
