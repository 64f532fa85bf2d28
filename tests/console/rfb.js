// rfb.js: a minimal RFB 3.8 client (security type None) over a plain TCP
// socket or a console-proxy WebSocket, for the console tests and the bench.
//
// It does the handshake QEMU's VNC server expects with no auth (version
// "RFB 003.008\n", security type 1, ClientInit shared=1, ServerInit), asks
// for Raw encoding only, and then parses the server's messages as a stream:
// a FramebufferUpdate's pixel bytes are counted and dropped, never copied,
// so a client can take many full-screen updates a second.  Each transport
// is the same small object (send, pause, resume, close, and on('data'),
// on('close')), so one client measures a direct connection and a proxied
// one the same way.

'use strict';
const net = require('net');
const { EventEmitter } = require('events');
const WebSocket = require('ws');

// --- transports ---------------------------------------------------------------

// tcp(host, port): a transport on a TCP connection.
function tcp (host, port) {
    const t = new EventEmitter();
    const sock = net.connect({ host, port });
    sock.setNoDelay(true);
    sock.on('connect', () => t.emit('open'));
    sock.on('data', (buf) => t.emit('data', buf));
    sock.on('error', (err) => t.emit('error', err));
    sock.on('close', () => t.emit('close', { code: null, reason: '' }));
    t.send = (buf) => sock.write(buf);
    t.pause = () => sock.pause();
    t.resume = () => sock.resume();
    t.close = () => sock.destroy();
    t.kind = 'tcp';
    return t;
}

// websocket(url, {origin}): a transport on a WebSocket to the console proxy;
// RFB bytes travel as binary frames.  'refused' is emitted when the HTTP
// handshake fails (the status code), 'close' with the close code.
function websocket (url, opts = {}) {
    const t = new EventEmitter();
    const headers = {};
    if (opts.origin) headers.Origin = opts.origin;
    const ws = new WebSocket(url, { headers, perMessageDeflate: false, maxPayload: 0 });
    ws.binaryType = 'nodebuffer';
    ws.on('open', () => {
        ws._socket.setNoDelay(true);
        t.emit('open');
    });
    ws.on('message', (data) => t.emit('data', data));
    ws.on('unexpected-response', (req, res) => {
        t.emit('refused', { status: res.statusCode });
        req.destroy();
    });
    ws.on('error', (err) => t.emit('error', err));
    ws.on('close', (code, reason) => t.emit('close', { code, reason: reason.toString() }));
    t.send = (buf) => { if (ws.readyState === WebSocket.OPEN) ws.send(buf, { binary: true }); };
    // ws.pause() stops reading the socket itself: the kernel buffers fill
    // and TCP flow control pushes back on the proxy, as a stuck browser does.
    t.pause = () => ws.pause();
    t.resume = () => ws.resume();
    t.close = () => ws.terminate();
    t.ws = ws;
    t.kind = 'ws';
    return t;
}

// --- the RFB client -------------------------------------------------------------

// Incoming bytes as a queue of chunks; need(n) tells whether n bytes are
// there, take(n) copies them out (small reads only), skip(n) drops up to n.
class Bytes {
    constructor () { this.chunks = []; this.avail = 0; }
    push (buf) { if (buf.length) { this.chunks.push(buf); this.avail += buf.length; } }
    need (n) { return this.avail >= n; }
    take (n) {
        const out = Buffer.allocUnsafe(n);
        let got = 0;
        while (got < n) {
            const c = this.chunks[0];
            const k = Math.min(c.length, n - got);
            c.copy(out, got, 0, k);
            got += k;
            if (k === c.length) this.chunks.shift(); else this.chunks[0] = c.subarray(k);
        }
        this.avail -= n;
        return out;
    }
    skip (n) {
        let done = 0;
        while (done < n && this.chunks.length) {
            const c = this.chunks[0];
            const k = Math.min(c.length, n - done);
            done += k;
            if (k === c.length) this.chunks.shift(); else this.chunks[0] = c.subarray(k);
        }
        this.avail -= done;
        return done;
    }
}

// Encodings: Raw for pixels; ExtendedDesktopSize (-308) on request, because
// QEMU answers every non-incremental FramebufferUpdateRequest with one at
// once, from the request's own handler, while pixels wait for its refresh
// timer (30 ms to seconds): the immediate answer is the round trip a
// latency figure needs.
const ENC_RAW = 0;
const ENC_DESKTOP_SIZE = -223;
const ENC_EXT_DESKTOP_SIZE = -308;

// Rfb(transport, {extDesktopSize}): events 'init' ({width, height, bpp,
// name}), 'update' (one whole FramebufferUpdate: {bytes, pixels, ext}:
// pixels true when it carried Raw rectangles, ext when an
// ExtendedDesktopSize one), 'error', 'close'.
class Rfb extends EventEmitter {
    constructor (transport, opts = {}) {
        super();
        this.t = transport;
        this.encodings = opts.extDesktopSize ? [ENC_RAW, ENC_EXT_DESKTOP_SIZE] : [ENC_RAW];
        this.in = new Bytes();
        this.state = 'version';
        this.received = 0;        // every byte from the server
        this.updates = 0;         // whole FramebufferUpdates
        this.rectsLeft = 0;
        this.pixelsLeft = 0;
        this.updateBytes = 0;
        transport.on('data', (buf) => {
            this.received += buf.length;
            this.in.push(buf);
            try { this.s_parse(); } catch (err) { this.emit('error', err); transport.close(); }
        });
        transport.on('close', (info) => this.emit('close', info));
        transport.on('error', (err) => this.emit('error', err));
    }

    // request(incremental): a FramebufferUpdateRequest for the whole screen.
    // request(incremental, w, h): a FramebufferUpdateRequest for the
    // top-left w x h pixels (default: the whole screen).
    request (incremental = false, w = this.width, h = this.height) {
        const m = Buffer.alloc(10);
        m.writeUInt8(3, 0);
        m.writeUInt8(incremental ? 1 : 0, 1);
        m.writeUInt16BE(0, 2);
        m.writeUInt16BE(0, 4);
        m.writeUInt16BE(w, 6);
        m.writeUInt16BE(h, 8);
        this.t.send(m);
    }

    s_parse () {
        for (;;) {
            switch (this.state) {
            case 'version': {
                if (!this.in.need(12)) return;
                const v = this.in.take(12).toString('latin1');
                if (!/^RFB 003\.00[378]\n$/.test(v)) throw new Error('not an RFB server: ' + JSON.stringify(v));
                this.t.send(Buffer.from('RFB 003.008\n', 'latin1'));
                this.state = 'sectypes';
                break;
            }
            case 'sectypes': {
                if (!this.in.need(1)) return;
                const n = this.in.chunks[0][0];
                if (!this.in.need(1 + n)) return;
                const types = [...this.in.take(1 + n).subarray(1)];
                if (n === 0) throw new Error('server refused the connection');
                if (!types.includes(1)) throw new Error('no security type None: ' + types);
                this.t.send(Buffer.from([1]));
                this.state = 'secresult';
                break;
            }
            case 'secresult': {
                if (!this.in.need(4)) return;
                const r = this.in.take(4).readUInt32BE(0);
                if (r !== 0) throw new Error('security result ' + r);
                this.t.send(Buffer.from([1]));        // ClientInit: shared
                this.state = 'serverinit';
                break;
            }
            case 'serverinit': {
                if (!this.in.need(24)) return;
                const nameLen = this.in.chunks[0].length >= 24
                    ? this.in.chunks[0].readUInt32BE(20)
                    : Buffer.concat(this.in.chunks).readUInt32BE(20);
                if (!this.in.need(24 + nameLen)) return;
                const b = this.in.take(24 + nameLen);
                this.width = b.readUInt16BE(0);
                this.height = b.readUInt16BE(2);
                this.bpp = b.readUInt8(4);
                this.name = b.subarray(24).toString('utf8');
                const enc = Buffer.alloc(4 + 4 * this.encodings.length);
                enc.writeUInt8(2, 0);
                enc.writeUInt16BE(this.encodings.length, 2);
                this.encodings.forEach((e, i) => enc.writeInt32BE(e, 4 + 4 * i));
                this.t.send(enc);
                this.state = 'msg';
                this.emit('init', { width: this.width, height: this.height, bpp: this.bpp, name: this.name });
                break;
            }
            case 'msg': {
                if (!this.in.need(1)) return;
                const type = this.in.chunks[0][0];
                if (type === 0) {
                    if (!this.in.need(4)) return;
                    this.rectsLeft = this.in.take(4).readUInt16BE(2);
                    this.updateBytes = 4;
                    this.updatePixels = false;
                    this.updateExt = false;
                    this.state = 'rect';
                } else if (type === 1) {
                    if (!this.in.need(6)) return;
                    const h = this.in.chunks[0].length >= 6 ? this.in.chunks[0] : Buffer.concat(this.in.chunks);
                    const n = h.readUInt16BE(4);
                    if (!this.in.need(6 + n * 6)) return;
                    this.in.skip(6 + n * 6);
                } else if (type === 2) {
                    this.in.skip(1);
                } else if (type === 3) {
                    if (!this.in.need(8)) return;
                    const h = this.in.chunks[0].length >= 8 ? this.in.chunks[0] : Buffer.concat(this.in.chunks);
                    const n = h.readUInt32BE(4);
                    this.in.take(8);
                    this.pixelsLeft = n;
                    this.state = 'skip';
                } else {
                    throw new Error('unknown server message type ' + type);
                }
                if (this.state === 'rect' && this.rectsLeft === 0) this.s_updateDone();
                break;
            }
            case 'rect': {
                if (!this.in.need(12)) return;
                const r = this.in.take(12);
                const w = r.readUInt16BE(4), h = r.readUInt16BE(6), enc = r.readInt32BE(8);
                this.updateBytes += 12;
                if (enc === ENC_RAW) {
                    this.pixelsLeft = w * h * (this.bpp / 8);
                    this.updateBytes += this.pixelsLeft;
                    this.updatePixels = true;
                    this.state = 'pixels';
                } else if (enc === ENC_EXT_DESKTOP_SIZE) {
                    this.width = w;
                    this.height = h;
                    this.updateExt = true;
                    this.state = 'screens';
                } else if (enc === ENC_DESKTOP_SIZE) {
                    this.width = w;
                    this.height = h;
                    if (--this.rectsLeft === 0) this.s_updateDone();
                } else {
                    throw new Error('unexpected encoding ' + enc);
                }
                break;
            }
            case 'screens': {
                if (!this.in.need(4)) return;
                const n = this.in.chunks[0][0];
                if (!this.in.need(4 + 16 * n)) return;
                this.in.skip(4 + 16 * n);
                this.updateBytes += 4 + 16 * n;
                if (--this.rectsLeft === 0) this.s_updateDone(); else this.state = 'rect';
                break;
            }
            case 'pixels': {
                this.pixelsLeft -= this.in.skip(this.pixelsLeft);
                if (this.pixelsLeft > 0) return;
                if (--this.rectsLeft === 0) this.s_updateDone(); else this.state = 'rect';
                break;
            }
            case 'skip': {
                this.pixelsLeft -= this.in.skip(this.pixelsLeft);
                if (this.pixelsLeft > 0) return;
                this.state = 'msg';
                break;
            }
            default:
                throw new Error('bad state ' + this.state);
            }
        }
    }

    s_updateDone () {
        this.updates++;
        this.state = 'msg';
        this.emit('update', { bytes: this.updateBytes, pixels: this.updatePixels, ext: this.updateExt });
    }
}

// connect(transport, timeoutMs, opts): resolves with the Rfb once ServerInit came.
function connect (transport, timeoutMs = 10000, opts = {}) {
    return new Promise((resolve, reject) => {
        const rfb = new Rfb(transport, opts);
        const timer = setTimeout(() => { transport.close(); reject(new Error('RFB handshake timed out')); }, timeoutMs);
        rfb.once('init', () => { clearTimeout(timer); resolve(rfb); });
        rfb.once('error', (err) => { clearTimeout(timer); reject(err); });
        rfb.once('close', (info) => {
            clearTimeout(timer);
            reject(new Error('closed during the handshake' + (info && info.code ? ' (' + info.code + ')' : '')));
        });
        transport.on('refused', (r) => { clearTimeout(timer); reject(new Error('handshake refused: HTTP ' + r.status)); });
    });
}

module.exports = { tcp, websocket, Rfb, connect };
