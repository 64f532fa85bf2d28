// browser.js CDP_URL PAGE_URL SCREENSHOT.png [TIMEOUT_S]: open a console page
// in a running headless Chromium and report what a person would see.
//
// The browser is started (and stopped, by PID) by the calling test; this
// script attaches to it over the DevTools protocol, opens PAGE_URL (noVNC's
// vnc_lite.html from `zova console url show`), waits until noVNC's status
// line (#status) says "Connected" and its canvas shows the guest's screen,
// saves a screenshot of the page, and prints one JSON line:
//
//   {"status": "...", "width": W, "height": H, "nonbackground": N,
//    "colours": C, "errors": [...]}
//
// "nonbackground" counts the canvas pixels that differ from its most
// common colour (read in the page with getImageData): text on a VGA
// console makes thousands, a blank or black screen none.  Exit 0 when the
// page connected and the canvas was drawn, 1 otherwise (the JSON still
// says what was seen).

'use strict';
const { chromium } = require('playwright-core');

const [cdpUrl, pageUrl, shotPath, timeoutArg] = process.argv.slice(2);
const timeoutMs = (Number(timeoutArg) || 60) * 1000;
// A screen with this many text pixels has visibly been drawn.
const DRAWN_PIXELS = 500;

// In the page: the canvas's size and pixel census.
function s_census () {
    const canvas = document.querySelector('#screen canvas');
    if (!canvas || !canvas.width || !canvas.height) return { width: 0, height: 0, nonbackground: 0, colours: 0 };
    const ctx = canvas.getContext('2d');
    const px = new Uint32Array(ctx.getImageData(0, 0, canvas.width, canvas.height).data.buffer);
    const counts = new Map();
    for (const p of px) counts.set(p, (counts.get(p) || 0) + 1);
    let most = 0;
    for (const n of counts.values()) most = Math.max(most, n);
    return { width: canvas.width, height: canvas.height, nonbackground: px.length - most, colours: counts.size };
}

async function main () {
    const result = { status: null, width: 0, height: 0, nonbackground: 0, colours: 0, errors: [] };
    const browser = await chromium.connectOverCDP(cdpUrl, { timeout: timeoutMs });
    let ok = false;
    try {
        const context = browser.contexts()[0] || await browser.newContext();
        const page = await context.newPage();
        page.on('pageerror', (err) => result.errors.push('pageerror: ' + err.message));
        page.on('console', (msg) => { if (msg.type() === 'error') result.errors.push('console: ' + msg.text()); });
        const deadline = Date.now() + timeoutMs;
        await page.goto(pageUrl, { timeout: timeoutMs });
        // Connected, or a final state that will not change (Disconnected, or
        // "Something went wrong").
        await page.waitForFunction(() => {
            const s = document.getElementById('status');
            return s && /^(Connected|Disconnected|Something went wrong)/.test(s.textContent);
        }, null, { timeout: Math.max(1000, deadline - Date.now()), polling: 100 }).catch(() => {});
        result.status = await page.$eval('#status', (e) => e.textContent).catch(() => null);
        if (result.status && result.status.startsWith('Connected')) {
            // The first framebuffer update follows the connection.
            while (Date.now() < deadline) {
                Object.assign(result, await page.evaluate(s_census));
                if (result.nonbackground >= DRAWN_PIXELS) break;
                await page.waitForTimeout(200);
            }
            ok = result.nonbackground >= DRAWN_PIXELS;
        }
        await page.screenshot({ path: shotPath, fullPage: true });
        await page.close();
    } finally {
        await browser.close().catch(() => {});
    }
    console.log(JSON.stringify(result));
    return ok;
}

main().then((ok) => process.exit(ok ? 0 : 1), (err) => {
    console.log(JSON.stringify({ status: null, errors: [String(err && err.stack || err)] }));
    process.exit(1);
});
