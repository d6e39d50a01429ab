// The built package as a web developer installs it: package.json names files that are there
// and that `npm pack` takes; the .d.ts declares every export of the module; a TypeScript file
// calling every export type-checks against it; its kernel names are the library's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = new URL('../../', import.meta.url).pathname;
const PKG = join(ROOT, 'target/web');
const read = (f) => readFileSync(join(PKG, f), 'utf8');

test('package.json names the module, its types and files that exist, and npm pack takes them', () => {
  const pkg = JSON.parse(read('package.json'));
  for (const f of [pkg.main, pkg.module, pkg.types, ...pkg.files]) {
    assert.ok(existsSync(join(PKG, f)), `${f} is missing from target/web`);
  }
  const [packed] = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json'], { cwd: PKG, encoding: 'utf8' }));
  const names = packed.files.map((f) => f.path);
  for (const f of [...pkg.files, 'package.json']) assert.ok(names.includes(f), `npm pack leaves out ${f}`);
  assert.equal(packed.name, 'wgpu-conv');
});

test('the .d.ts declares every export of the module', () => {
  const js = read('wgpu_conv.js'), dts = read('wgpu_conv.d.ts');
  const exported = [...js.matchAll(/^export (?:async )?(function|class) (\w+)/gm)].map((m) => [m[1], m[2]]);
  assert.ok(exported.length >= 4, `exports: ${exported}`);
  // init (the default export) and initSync
  assert.match(js, /^export \{ initSync, __wbg_init as default \};/m, 'init and initSync are exported');
  assert.match(dts, /^export default function __wbg_init\s*\(/m, 'init is declared');
  assert.match(dts, /^export function initSync\s*\(/m, 'initSync is declared');
  for (const [kind, name] of exported) {
    const decl = kind === 'class' ? new RegExp(`^export class ${name}\\b`, 'm')
      : new RegExp(`^export (default )?function ${name}\\(`, 'm');
    assert.match(dts, decl, `${kind} ${name} has no declaration`);
  }
  for (const name of ['Context', 'Trainer', 'conv2dReference', 'trainReference']) {
    assert.ok(exported.some(([, n]) => n === name), `${name} is not exported`);
  }
  for (const method of ['create', 'conv2d', 'conv2dBackward', 'corr2d', 'edges', 'describe', 'step', 'losses', 'layer']) {
    assert.match(dts, new RegExp(`\\b${method}\\(`), `${method} is not declared`);
  }
});

test('TypeScript code calling every export type-checks against the .d.ts (tsc --strict)', () => {
  const tsc = join(ROOT, 'web/tests/node_modules/.bin/tsc');
  try {
    execFileSync(tsc, ['-p', join(ROOT, 'web/tests')], { encoding: 'utf8' });
  } catch (e) {
    assert.fail(`tsc: ${e.stdout}${e.stderr}`);
  }
});

test('the .d.ts kernel names are the library\'s (filters::NAMES)', () => {
  const src = readFileSync(join(ROOT, 'src/filters.rs'), 'utf8');
  const block = src.match(/pub const NAMES: &\[&str\] = &\[([^\]]*)\]/)[1];
  const names = [...block.matchAll(/"([^"]+)"/g)].map((m) => m[1]).sort();
  const union = read('wgpu_conv.d.ts').match(/export type EdgeKernel =([^;]*);/)[1];
  const declared = [...union.matchAll(/"([^"]+)"/g)].map((m) => m[1]).sort();
  assert.deepEqual(declared, names);
});
