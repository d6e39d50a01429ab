// The chapter's page used as a person uses it: it loads and passes its checks, a photograph
// is uploaded through the file input and its edge map read off the canvas and compared with
// `wgpu-conv edges` on the same file, the kernel and the learning settings are changed, and
// without WebGPU it says so and runs the chapter on the CPU. Then the package's own checks.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canvasGray, cli, launch, npy, open, pngGray, readNpy, statusLine } from './browser.mjs';

const ROOT = new URL('../../', import.meta.url).pathname;
const work = mkdtempSync(join(tmpdir(), 'wgpu-conv-page-'));
let browser;

before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

/** A crop of docs/cups.jpg (`w` x `h` from its top-left corner at `x`, `y`), as a PNG file. */
async function cupsCrop(page, x, y, w, h) {
  const jpg = readFileSync(join(ROOT, 'docs/cups.jpg')).toString('base64');
  const b64 = await page.evaluate(async ([jpg, x, y, w, h]) => {
    const blob = await (await fetch('data:image/jpeg;base64,' + jpg)).blob();
    const bmp = await createImageBitmap(blob, { colorSpaceConversion: 'none' });
    const c = new OffscreenCanvas(w, h);
    c.getContext('2d').drawImage(bmp, x, y, w, h, 0, 0, w, h);
    const png = await c.convertToBlob({ type: 'image/png' });
    const bytes = new Uint8Array(await png.arrayBuffer());
    let s = '';
    for (const b of bytes) s += String.fromCharCode(b);
    return btoa(s);
  }, [jpg, x, y, w, h]);
  const file = join(work, `cups-${w}x${h}.png`);
  writeFileSync(file, Buffer.from(b64, 'base64'));
  return file;
}

/** Waits until the output canvas has been drawn `runs` times. */
async function drawn(page, selector, runs) {
  await page.waitForFunction(([s, n]) => Number(document.querySelector(s).dataset.runs || 0) >= n,
    [selector, runs], { timeout: 300_000, polling: 100 });
}

/** The largest difference between two gray images, over all pixels and over the border. */
function difference(a, b) {
  assert.equal(a.width, b.width, 'width'); assert.equal(a.height, b.height, 'height');
  let all = 0, border = 0;
  for (let i = 0; i < a.gray.length; i++) {
    const d = Math.abs(a.gray[i] - b.gray[i]);
    const [r, c] = [Math.floor(i / a.width), i % a.width];
    all = Math.max(all, d);
    if (r === 0 || c === 0 || r === a.height - 1 || c === a.width - 1) border = Math.max(border, d);
  }
  return { all, border };
}

test('the page passes the chapter\'s checks on WebGPU and names the adapter', async () => {
  const page = await open(browser, 'index.html');
  const line = await statusLine(page, 'wgpu-conv web:');
  assert.match(line, /^wgpu-conv web: all \d+ checks passed on /, page.consoleLines.join('\n'));
  const adapter = await page.textContent('#adapter');
  assert.ok(adapter.length > 10 && !/CPU reference/.test(adapter), adapter);
  assert.equal(await page.isVisible('#nogpu'), false);
  await page.close();
});

test('an uploaded photograph\'s edge map equals wgpu-conv edges within 1 level, border included', async (t) => {
  const page = await open(browser, 'index.html');
  await statusLine(page, 'wgpu-conv web:');
  await page.waitForSelector('body[data-drawn="yes"]');
  const file = await cupsCrop(page, 150, 60, 420, 300);
  let runs = Number(await page.$eval('#img-out', (c) => c.dataset.runs || 0));
  await page.setInputFiles('#file', file);
  await drawn(page, '#img-out', ++runs);
  for (const kernel of ['sobel', 'prewitt', 'edge', 'gaussian']) {
    if (kernel !== 'sobel') {
      await page.selectOption('#kernel', kernel);
      await drawn(page, '#img-out', ++runs);
    }
    const shown = await canvasGray(page, '#img-out');
    const out = join(work, `cli-${kernel}.png`);
    cli(['edges', file, out, '--kernel', kernel]);
    const expected = await pngGray(page, readFileSync(out));
    const d = difference(shown, expected);
    t.diagnostic(`${kernel}: ${shown.width}x${shown.height}, max |page - CLI| ${d.all} levels (border ${d.border})`);
    assert.ok(d.all <= 1, `${kernel}: the page differs from the CLI by ${d.all} levels`);
    // an edge map that is not flat (a blank canvas would equal a blank CLI output)
    assert.ok(new Set(shown.gray).size > 50, `${kernel}: the edge map has few levels`);
  }
  await page.close();
});

test('a 512x512 photograph: the page\'s time for a Sobel edge map', async (t) => {
  const page = await open(browser, 'index.html');
  await page.waitForSelector('body[data-drawn="yes"]', { timeout: 600_000 });
  const file = await cupsCrop(page, 0, 0, 512, 512);
  let runs = Number(await page.$eval('#img-out', (c) => c.dataset.runs || 0));
  const times = [];
  for (let i = 0; i < 3; i++) {
    await page.setInputFiles('#file', []);
    await page.setInputFiles('#file', file);
    await drawn(page, '#img-out', ++runs);
    times.push(await page.textContent('#edges-ms'));
  }
  t.diagnostic(`512x512 Sobel on the page: ${times.join('; ')}`);
  assert.match(times[2], /ms for 512x512 \(sobel\)/);
  await page.close();
});

test('changing the learning rate and steps: the learned kernel and losses are the CLI\'s', async (t) => {
  const page = await open(browser, 'index.html');
  await page.waitForSelector('body[data-drawn="yes"]', { timeout: 600_000 });
  const runs = Number(await page.$eval('#learn', (b) => b.dataset.runs || 0));
  await page.fill('#lr', '0.01');
  await page.fill('#steps', '20');
  await page.click('#learn');
  await page.waitForFunction((n) => Number(document.getElementById('learn').dataset.runs) > n, runs);
  const learned = JSON.parse(await page.textContent('#learned'));
  const caption = await page.textContent('#loss-caption');
  assert.match(caption, /20 steps of SGD, lr 0.01/);
  // the CLI on the same data: the chapter's image and its edges
  const X = Array.from({ length: 48 }, (_, i) => (i % 8 >= 2 && i % 8 < 6) ? 0 : 1);
  const Y = Array.from({ length: 42 }, (_, i) => X[Math.floor(i / 7) * 8 + i % 7] - X[Math.floor(i / 7) * 8 + i % 7 + 1]);
  writeFileSync(join(work, 'x.npy'), npy(X, [1, 1, 6, 8]));
  writeFileSync(join(work, 'y.npy'), npy(Y, [1, 1, 6, 7]));
  const wfile = join(work, 'w.npy');
  const report = cli(['train', '--input', join(work, 'x.npy'), '--target', join(work, 'y.npy'),
    '--kernel-size', '1,2', '--lr', '0.01', '--steps', '20', '--seed', '0', '--output-weight', wfile]);
  const w = readNpy(readFileSync(wfile));
  t.diagnostic(`page ${JSON.stringify(learned)}, CLI ${w.map((v) => v.toFixed(4))}`);
  // the page shows 4 decimals
  assert.ok(learned.every((v, i) => Math.abs(v - w[i]) <= 1e-4 + 5e-5), `page ${learned} vs CLI ${w}`);
  // the page's every-2nd-step losses against the CLI's report (printed every 2 steps)
  const pageLosses = (await page.textContent('#losses')).split(' (')[0].split(', ').map(Number);
  const cliLosses = [...report.matchAll(/loss\s+([0-9.e+-]+)/g)].map((m) => Number(m[1]));
  assert.equal(pageLosses.length, 10, await page.textContent('#losses'));
  assert.ok(cliLosses.length >= 10, report);
  pageLosses.forEach((l, i) => assert.ok(Math.abs(l - cliLosses[i]) <= 1e-3 * (1 + cliLosses[i]),
    `step ${2 * i + 2}: page ${l} vs CLI ${cliLosses[i]}`));
  await page.close();
});

test('the package: conv2d, gradients, training and errors against the CPU reference (test.html)', async () => {
  const page = await open(browser, 'test.html');
  const line = await statusLine(page, 'wgpu-conv package:');
  assert.match(line, /^wgpu-conv package: all \d+ checks passed/, await page.textContent('#log'));
  await page.close();
});

test('without WebGPU the page says which browsers have it, never apt, and runs the chapter on the CPU', async () => {
  const plain = await launch({ webgpu: false });
  try {
    const page = await open(plain, 'index.html');
    const line = await statusLine(page, 'wgpu-conv web:');
    assert.match(line, /^wgpu-conv web: all \d+ checks passed on the CPU reference/, line);
    const message = await page.textContent('#nogpu');
    assert.ok(await page.isVisible('#nogpu'));
    assert.match(message, /WebGPU/);
    assert.match(message, /Chrome/);
    assert.doesNotMatch(await page.textContent('body'), /apt(-get)?\b/);
    await page.close();
  } finally {
    await plain.close();
  }
});
