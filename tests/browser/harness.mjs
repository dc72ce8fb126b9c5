// Shared pieces of the browser tests: the served page, Chromium, assertions.
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { chromium } from 'playwright-core';

export const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
export const ARTIFACTS = path.join(ROOT, 'tests/artifacts');
mkdirSync(ARTIFACTS, { recursive: true });

async function freePort() {
  return new Promise((resolve) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Starts `prunelab serve` and resolves to {url, stop}. */
export async function serve() {
  const bin = process.env.PRUNELAB_BIN || path.join(ROOT, 'target/release/prunelab');
  const port = await freePort();
  const child = spawn(bin, ['serve', '--dir', 'static'], {
    cwd: ROOT, env: { ...process.env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => { if (String(d).includes('http://127.0.0.1')) resolve(); });
    child.on('exit', (code) => reject(new Error(`prunelab serve exited with ${code}`)));
  });
  return { url: `http://127.0.0.1:${port}`, stop: () => child.kill() };
}

/** Serves the static site in `dir` (./build.sh site) under the sub-path
 *  /prunelab/ with Python's plain static server, as a project site on a
 *  static host would be; resolves to {url, stop}. */
export async function serveSite(dir) {
  const root = tempDir('site-');
  symlinkSync(path.resolve(dir), path.join(root, 'prunelab'));
  const port = await freePort();
  const child = spawn('python3', ['-u', '-m', 'http.server', String(port), '--bind', '127.0.0.1', '--directory', root], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  await new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => { if (String(d).includes('Serving HTTP')) resolve(); });
    child.on('exit', (code) => reject(new Error(`python3 -m http.server exited with ${code}`)));
  });
  return { url: `http://127.0.0.1:${port}/prunelab`, stop: () => child.kill() };
}

/** A headless Chromium; `webgpu: false` leaves WebGPU without an adapter. */
export async function browser({ webgpu = true } = {}) {
  const args = ['--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'];
  if (webgpu) args.push('--enable-unsafe-webgpu');
  const profile = mkdtempSync(path.join(tmpdir(), 'pw-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true, args,
    viewport: { width: 1100, height: 720 },
  });
  // A profile is ~65 MB: closing the browser removes it (they used to fill /tmp).
  const close = context.close.bind(context);
  context.close = async (...a) => {
    try { await close(...a); } finally { rmSync(profile, { recursive: true, force: true }); }
  };
  return context;
}

/** Opens `url` and records every request and console error. */
export async function open(context, url) {
  const page = context.pages()[0] || await context.newPage();
  const requests = [];
  const errors = [];
  page.on('request', (r) => requests.push(r.url()));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(url, { waitUntil: 'domcontentloaded' });
  return { page, requests, errors };
}

/** Waits until the page's view reaches `state` (or reports an error). The
 *  predicate is a function, not a string: the page's CSP forbids eval. */
export async function waitForView(page, state, timeout = 240_000) {
  await page.waitForFunction((want) => { const v = window.__prunelab; return v && (v.error || v.state === want); },
    state, { timeout, polling: 250 });
  const view = await page.evaluate(() => window.__prunelab);
  if (view.error) throw new Error(`the page reported an error: ${view.error}`);
  return view;
}

export function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

export const mean = (xs) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

/** A directory holding `train` and `test` generated images in CIFAR-10's
 * binary layout (label byte + 3,072 pixel bytes from a seeded LCG): what
 * the CIFAR lab's tests and benchmark load instead of the real data set. */
// Temporary folders, removed when the process exits.
const temps = [];
process.on('exit', () => { for (const d of temps) rmSync(d, { recursive: true, force: true }); });
export function tempDir(prefix) {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  temps.push(dir);
  return dir;
}

export function cifarFiles(train, test) {
  const dir = tempDir('cifar-');
  const records = (n, seed) => {
    const out = new Uint8Array(n * 3073);
    let s = seed;
    for (let i = 0; i < n; i++) {
      out[i * 3073] = i % 10;
      for (let p = 1; p < 3073; p++) { s = (s * 1103515245 + 12345) >>> 0; out[i * 3073 + p] = (s >>> 16) & 255; }
    }
    return out;
  };
  writeFileSync(path.join(dir, 'data_batch_1.bin'), records(train, 1));
  writeFileSync(path.join(dir, 'test_batch.bin'), records(test, 2));
  return [path.join(dir, 'data_batch_1.bin'), path.join(dir, 'test_batch.bin')];
}

