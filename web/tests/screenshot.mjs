// Loads the page, uploads a crop of docs/cups.jpg, and saves a screenshot: node screenshot.mjs OUT.png
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launch, open, statusLine } from './browser.mjs';

const out = process.argv[2] || 'screenshot.png';
const root = new URL('../../', import.meta.url).pathname;
const browser = await launch();
try {
  const page = await open(browser, 'index.html');
  console.log(await statusLine(page, 'wgpu-conv web:'));
  await page.waitForSelector('body[data-drawn="yes"]');
  const file = join(mkdtempSync(join(tmpdir(), 'wgpu-conv-shot-')), 'cups.jpg');
  writeFileSync(file, readFileSync(join(root, 'docs/cups.jpg')));
  await page.setInputFiles('#file', file);
  await page.waitForFunction(() => Number(document.getElementById('img-out').dataset.runs) >= 2,
    null, { timeout: 300_000 });
  await page.screenshot({ path: out, fullPage: true });
  console.log(`screenshot: ${out}`);
} finally {
  await browser.close();
}
