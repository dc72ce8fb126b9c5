// Every setting of the page in one table, read from and written to the URL
// hash by name — the seed included, so a copied link reproduces the run.
// It is the only source of each control's range, options and default:
// `bind()` (ui.js) fills the controls from it. The pruning methods come from
// the engine's registry (`applyMethods`), not from this file.
export const SETTINGS = [
  // Which lab, and page chrome.
  { name: 'lab', type: 'string', default: 'toy', options: ['toy', 'cifar'] },
  { name: 'embed', type: 'bool', default: false },
  { name: 'device', type: 'string', default: 'auto', options: ['auto', 'webgpu', 'cpu'], labels: ['auto (CPU for toy networks, WebGPU for CIFAR)', 'WebGPU', 'CPU (WebAssembly)'] },
  // Toy lab: data.
  { name: 'dataset', type: 'string', default: 'spiral', options: ['spiral', 'circles', 'xor', 'gaussians', 'moons', 'tfp-spiral', 'csv'] },
  { name: 'noise', type: 'number', default: 0.05, min: 0, max: 0.3, step: 0.01 },
  { name: 'points', type: 'number', default: 400, min: 50, max: 2000, step: 50 },
  { name: 'seed', type: 'number', default: 1, min: 0, max: 1e9, step: 1 },
  // Toy lab: network and training.
  { name: 'model', type: 'string', default: 'mlp', options: ['mlp', 'resmlp'], labels: ['MLP', 'residual MLP (blocks)'] },
  { name: 'hidden', type: 'list', default: [12, 12] },
  { name: 'activation', type: 'string', default: 'relu', options: ['relu', 'tanh', 'sigmoid'] },
  // TensorFlow Playground's start (U(−0.5, 0.5) on its plane, biases 0.1) learns a spiral in a
  // few hundred epochs where burn's default start often stalls (docs/benchmarks.md).
  { name: 'init', type: 'string', default: 'playground', options: ['playground', 'default'], labels: ['TF Playground', 'burn / PyTorch'] },
  // Adam at 0.01: at Playground's SGD rate (0.03) Adam bounces on the spiral.
  { name: 'lr', type: 'number', default: 0.01, min: 0.0001, max: 1, step: 0.001 },
  { name: 'batch', type: 'number', default: 32, min: 1, max: 1000, step: 1 },
  // 0: train until paused, as TensorFlow Playground does; a number stops there (a link may set one).
  { name: 'epochs', type: 'number', default: 0, min: 0, max: 100000, step: 1 },
  // Toy lab: pruning.
  { name: 'method', type: 'string', default: 'l1', options: 'methods' },
  { name: 'amount', type: 'number', default: 0, min: 0, max: 0.95, step: 0.05 },
  // Whether channel criteria may cut a residual model's stream (stem and conv2s together).
  { name: 'streams', type: 'string', default: 'free', options: ['free', 'stream'], labels: ['inside blocks', 'residual stream too'] },
  { name: 'mode', type: 'string', default: 'dense', options: ['dense', 's1'] },
  { name: 's1target', type: 'number', default: 0.5, min: 0.1, max: 0.9, step: 0.05 },
  // CIFAR lab.
  { name: 'cdataset', type: 'string', default: 'cifar10', options: ['cifar10', 'cifar100'], labels: ['CIFAR-10', 'CIFAR-100'] },
  { name: 'cmodel', type: 'string', default: 'cnn', options: ['cnn', 'resnet20'], labels: ['small CNN', 'ResNet-20'] },
  // Under a minute on one thread of the CPU module for the small CNN (47 s,
  // dense 51% ± 2: docs/benchmarks.md, "The CIFAR lab's defaults"): enough
  // data and epochs that methods differ by more than the test set's spread.
  { name: 'subset', type: 'number', default: 10000, min: 20, max: 50000, step: 100 },
  { name: 'ctest', type: 'number', default: 2000, min: 100, max: 10000, step: 100 },
  { name: 'cepochs', type: 'number', default: 5, min: 1, max: 200, step: 1 },
  { name: 'cmethod', type: 'string', default: 'energy', options: 'methods' },
  { name: 'camount', type: 'number', default: 0.5, min: 0, max: 0.95, step: 0.05 },
  { name: 'cstreams', type: 'string', default: 'free', options: ['free', 'stream'], labels: ['inside blocks', 'residual stream too'] },
];

const BY_NAME = Object.fromEntries(SETTINGS.map((s) => [s.name, s]));

function parse(setting, raw) {
  const { type, min = -Infinity, max = Infinity, options } = setting;
  if (type === 'number') {
    const v = Number(raw);
    return Number.isFinite(v) ? Math.min(max, Math.max(min, v)) : setting.default;
  }
  if (type === 'bool') return raw === '1' || raw === 'true';
  if (type === 'list') {
    const v = raw.split(',').map(Number).filter((x) => Number.isInteger(x) && x > 0 && x <= 256);
    return v.length ? v.slice(0, 8) : setting.default;
  }
  return Array.isArray(options) && !options.includes(raw) ? setting.default : raw;
}

/**
 * Fills the method settings from the engine's registry (the methods a slider
 * can rank) and resets a URL's method that the engine does not know.
 */
export function applyMethods(catalog, state) {
  const usable = catalog.filter((m) => m.slider);
  for (const s of SETTINGS.filter((x) => x.options === 'methods' || x.from === 'methods')) {
    s.from = 'methods';
    s.options = usable.map((m) => m.name);
    s.labels = usable.map((m) => `${m.title} (${m.granularity})`);
    if (!s.options.includes(state[s.name])) state[s.name] = s.default;
  }
  return usable;
}

export function readState(hash = location.hash) {
  const params = new URLSearchParams(hash.replace(/^#/, ''));
  const state = {};
  for (const s of SETTINGS) state[s.name] = params.has(s.name) ? parse(s, params.get(s.name)) : s.default;
  return state;
}

/** Writes every setting that differs from its default. */
export function writeState(state) {
  const params = new URLSearchParams();
  for (const s of SETTINGS) {
    const v = state[s.name];
    const text = Array.isArray(v) ? v.join(',') : typeof v === 'boolean' ? (v ? '1' : '0') : String(v);
    const def = Array.isArray(s.default) ? s.default.join(',') : typeof s.default === 'boolean' ? (s.default ? '1' : '0') : String(s.default);
    if (text !== def) params.set(s.name, text);
  }
  history.replaceState(null, '', '#' + params.toString());
}

export function setting(name) {
  return BY_NAME[name];
}

/** The engine's (partial) run config for the toy lab. */
export function toyConfig(state) {
  return {
    seed: state.seed,
    model: { name: state.model, hidden: state.model === 'resmlp' ? state.hidden.map(() => state.hidden[0]) : state.hidden, activation: state.activation, init: state.init },
    // No validation hold-out: every point trains, as in TensorFlow Playground
    // (the engine routes the data as the CLI does, which holds out 10%).
    data: { dataset: state.dataset === 'csv' ? 'spiral' : state.dataset, noise: state.noise, train_points: state.points, test_points: Math.max(100, Math.round(state.points / 2)), augment: false, valid_fraction: 0 },
    train: { epochs: state.epochs || UNTIL_PAUSED, batch_size: state.batch, lr: state.lr, optimizer: 'adam', weight_decay: 0, schedule: 'constant' },
  };
}

/** The toy lab's epoch count for "until paused": the engine's largest (a
 *  constant schedule does not depend on it). */
export const UNTIL_PAUSED = 100000;

/** S1's one pass needs an end: the set epochs, or this many when training
 *  runs until paused. */
export const S1_EPOCHS = 60;

/** The engine's run config for the CIFAR lab. */
export function cifarConfig(state, dataset = 'cifar10') {
  return {
    seed: state.seed,
    model: { name: state.cmodel },
    data: { dataset, dir: '(browser files)', train_subset: state.subset, test_subset: state.ctest, augment: true },
    train: { epochs: state.cepochs, batch_size: 32, lr: 0.05, optimizer: 'sgd', momentum: 0.9, weight_decay: 5e-4, schedule: 'cosine', eval_batch_size: 100 },
  };
}

/** Scoring options sized for the browser. */
export const SCORE_OPTIONS = { score_batches: 2, score_batch_size: 64, flexrel: { samples: 128 } };

/** The scoring options with the page's residual-stream choice. */
export const scoreOptions = (streams) => ({ ...SCORE_OPTIONS, residual_stream: streams === 'stream' });
