// Wires the page: settings ↔ URL, buttons → engine worker, results → views.
import { startEngine } from './engine.js';
import { drawBoundary } from './boundary.js';
import { drawChart } from './charts.js';
import { readState, writeState, runConfig } from './state.js';

const DATASETS = ['spiral', 'circles', 'xor', 'gaussians', 'moons'];
const EXTENT = 1.5;
const RESOLUTION = 64;
const $ = (id) => document.getElementById(id);

// What the page shows, also read by the browser tests.
const view = window.__prunelab = {
  state: 'starting', device: null, kind: null, error: null,
  losses: [], accuracies: [], boundaryFrames: 0,
};

const engine = startEngine();
let state = readState();
// Read before the hash is rewritten: tests and tutorials start training on load.
const autoplay = new URLSearchParams(location.hash.slice(1)).get('autoplay') === '1';
let data = null;
let info = null;
let running = false;
let generation = 0;

function setStatus(text, phase) {
  view.state = phase;
  $('status').textContent = text;
  $('status').dataset.state = phase;
}

function showNotice(text) {
  $('notice').textContent = text;
  $('notice').hidden = !text;
}

function fillControls() {
  $('dataset').replaceChildren(...DATASETS.map((d) => new Option(d, d)));
  $('dataset').value = state.dataset;
  $('noise').value = state.noise;
  $('hidden').value = state.hidden.join(',');
  $('lr').value = state.lr;
  $('seed').value = state.seed;
  $('device').value = state.device;
}

function readControls() {
  const hidden = $('hidden').value.split(',').map(Number).filter((v) => Number.isInteger(v) && v > 0);
  state = {
    ...state,
    dataset: $('dataset').value,
    noise: +$('noise').value,
    hidden: hidden.length ? hidden : [16, 16],
    lr: +$('lr').value || 0.03,
    seed: Math.max(0, Math.floor(+$('seed').value || 0)),
    device: $('device').value,
  };
  writeState(state);
}

async function redraw() {
  const probs = await engine.call('boundary', { resolution: RESOLUTION, extent: EXTENT });
  drawBoundary($('boundary'), probs, RESOLUTION, info.classes, EXTENT, data.test.points, data.test.labels);
  view.boundaryFrames += 1;
}

async function create() {
  const mine = ++generation;
  running = false;
  view.losses = [];
  view.accuracies = [];
  setStatus('starting the engine…', 'starting');
  try {
    const created = await engine.call('create', { config: runConfig(state), device: state.device });
    if (mine !== generation) return;
    ({ info } = created);
    data = created;
    view.device = info.device;
    view.kind = info.kind;
    $('device-info').textContent = info.device;
    $('model-info').textContent = `${info.model} · ${info.params} params · ${info.macs} MACs`;
    $('epoch-info').textContent = '0';
    $('acc-info').textContent = '–';
    showNotice(info.kind === 'cpu' && state.device !== 'cpu'
      ? `WebGPU is not available in this browser, so the network trains on the CPU (WebAssembly). ${info.device}`
      : '');
    if (info.kind === 'webgpu') setStatus('compiling GPU kernels (first use only)…', 'compiling');
    await redraw();
    drawChart($('chart'), view.losses, view.accuracies);
    setStatus('ready', 'ready');
  } catch (e) {
    view.error = String(e.message || e);
    setStatus(`error: ${view.error}`, 'error');
  }
}

async function train() {
  if (running || !info) return;
  running = true;
  const mine = generation;
  setStatus('training…', 'training');
  $('play').textContent = 'Pause';
  try {
    while (running && mine === generation) {
      const report = await engine.call('train', { steps: info.steps_per_epoch });
      view.losses.push(...report.steps.map((s) => s.loss));
      for (const epoch of report.epochs) view.accuracies.push(epoch.test_accuracy);
      $('epoch-info').textContent = String(report.epoch);
      const last = view.accuracies.at(-1);
      if (last !== undefined) $('acc-info').textContent = `${(100 * last).toFixed(1)}%`;
      drawChart($('chart'), view.losses, view.accuracies);
      await redraw();
      if (report.finished) {
        running = false;
        setStatus('done', 'done');
      }
    }
  } catch (e) {
    view.error = String(e.message || e);
    setStatus(`error: ${view.error}`, 'error');
    running = false;
  }
  $('play').textContent = 'Train';
  if (view.state === 'training') setStatus('paused', 'paused');
}

fillControls();
for (const id of ['dataset', 'noise', 'hidden', 'lr', 'seed', 'device']) {
  $(id).addEventListener('change', () => { readControls(); create(); });
}
$('play').addEventListener('click', () => (running ? (running = false) : train()));
$('reset').addEventListener('click', () => create());
writeState(state);
create().then(() => { if (autoplay) train(); });
