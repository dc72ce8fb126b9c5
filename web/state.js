// The page's settings, read from and written to the URL hash, so a link
// reproduces a run (seed included). One table lists every setting.
export const SETTINGS = [
  { name: 'dataset', type: 'string', default: 'spiral' },
  { name: 'noise', type: 'number', default: 0.05 },
  { name: 'hidden', type: 'list', default: [16, 16] },
  { name: 'lr', type: 'number', default: 0.03 },
  { name: 'seed', type: 'number', default: 1 },
  { name: 'device', type: 'string', default: 'auto' },
  { name: 'epochs', type: 'number', default: 60 },
];

export function readState(hash = location.hash) {
  const params = new URLSearchParams(hash.replace(/^#/, ''));
  const state = {};
  for (const s of SETTINGS) {
    const raw = params.get(s.name);
    if (raw === null) { state[s.name] = s.default; continue; }
    if (s.type === 'number') state[s.name] = Number.isFinite(+raw) ? +raw : s.default;
    else if (s.type === 'list') state[s.name] = raw.split(',').map(Number).filter((v) => v > 0);
    else state[s.name] = raw;
  }
  return state;
}

export function writeState(state) {
  const params = new URLSearchParams();
  for (const s of SETTINGS) {
    const v = state[s.name];
    params.set(s.name, Array.isArray(v) ? v.join(',') : String(v));
  }
  history.replaceState(null, '', '#' + params.toString());
}

// The run config the engine takes (a partial RunConfig; defaults fill the rest).
export function runConfig(state) {
  return {
    seed: state.seed,
    model: { name: 'mlp', hidden: state.hidden, activation: 'relu' },
    data: { dataset: state.dataset, noise: state.noise, train_points: 300, test_points: 200, augment: false },
    train: { epochs: state.epochs, batch_size: 30, lr: state.lr, optimizer: 'adam', weight_decay: 0, schedule: 'constant' },
  };
}
