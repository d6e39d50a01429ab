// Headless Chromium for the page tests (playwright-core driving the system's Chromium), and
// what they share: the served folder's address, the CLI, reading pixels, waiting on the page.
import { execFileSync } from 'node:child_process';
import { chromium } from 'playwright-core';

export const URL_BASE = process.env.WEB_URL || 'http://127.0.0.1:8765';
export const CLI = process.env.WGPU_CONV_BIN || 'wgpu-conv';
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

// Flags of a quiet headless start on a closed network; WebGPU on SwiftShader only when asked.
const QUIET = ['--no-sandbox', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--no-first-run', '--disable-quic', '--disable-gpu-sandbox'];

export async function launch({ webgpu = true } = {}) {
  const args = webgpu ? [...QUIET, '--enable-unsafe-webgpu']
    : [...QUIET, '--disable-features=WebGPU,Vulkan', '--disable-webgpu'];
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args });
}

/** A page at `path` of the served folder, its console kept for failure messages. */
export async function open(browser, path) {
  const page = await browser.newPage({ viewport: { width: 1000, height: 1500 } });
  const consoleLines = [];
  page.on('console', (m) => consoleLines.push(m.text()));
  page.on('pageerror', (e) => consoleLines.push('pageerror: ' + e.message));
  page.consoleLines = consoleLines;
  await page.goto(`${URL_BASE}/${path}`);
  return page;
}

/** Waits for `#status` to hold a line starting with `prefix` and returns it. */
export async function statusLine(page, prefix, timeout = 600_000) {
  await page.waitForFunction((p) => {
    const s = document.getElementById('status');
    return s && s.textContent.startsWith(p);
  }, prefix, { timeout, polling: 250 });
  return page.textContent('#status');
}

/** Gray levels (the red sample) of a canvas of the page. */
export async function canvasGray(page, selector) {
  return page.$eval(selector, (c) => {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    const g = new Array(c.width * c.height);
    for (let i = 0; i < g.length; i++) g[i] = d[4 * i];
    return { width: c.width, height: c.height, gray: g };
  });
}

/** Gray levels of a PNG file, decoded by the browser (8-bit gray PNGs decode exactly). */
export async function pngGray(page, bytes) {
  const b64 = Buffer.from(bytes).toString('base64');
  return page.evaluate(async (b64) => {
    const img = new Image();
    img.src = 'data:image/png;base64,' + b64;
    await img.decode();
    const c = new OffscreenCanvas(img.width, img.height);
    const g2 = c.getContext('2d');
    g2.drawImage(img, 0, 0);
    const d = g2.getImageData(0, 0, img.width, img.height).data;
    const g = new Array(img.width * img.height);
    for (let i = 0; i < g.length; i++) g[i] = d[4 * i];
    return { width: img.width, height: img.height, gray: g };
  }, b64);
}

/** Runs the CLI; its standard output. */
export function cli(args) {
  return execFileSync(CLI, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A float32 .npy file of `data` with `shape`. */
export function npy(data, shape) {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const pad = 64 - ((10 + header.length + 1) % 64);
  header += ' '.repeat(pad % 64) + '\n';
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = 1; head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  return Buffer.concat([head, Buffer.from(header, 'latin1'), Buffer.from(new Float32Array(data).buffer)]);
}

/** The values of a float32 .npy file. */
export function readNpy(bytes) {
  const len = bytes.readUInt16LE(8);
  const body = bytes.subarray(10 + len);
  return Array.from(new Float32Array(body.buffer.slice(body.byteOffset, body.byteOffset + body.length)));
}
