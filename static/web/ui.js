// Small DOM helpers shared by the labs.
import { setting } from './state.js';

export const $ = (id) => document.getElementById(id);

export function human(v) {
  const a = Math.abs(v);
  if (a >= 1e9) return (v / 1e9).toFixed(2) + 'G';
  if (a >= 1e6) return (v / 1e6).toFixed(2) + 'M';
  if (a >= 1e3) return (v / 1e3).toFixed(1) + 'k';
  return String(Math.round(v));
}

/** Writes a prune report's dense and pruned figures into `${prefix}${key}-dense|pruned`. */
export function showComparison(report, prefix, keys) {
  const format = { acc: (r) => pct(r.test_accuracy), params: (r) => human(r.params), macs: (r) => human(r.macs), bytes: (r) => human(r.bytes) };
  for (const side of ['dense', 'pruned']) {
    for (const key of keys) $(`${prefix}${key}-${side}`).textContent = format[key](report[side]);
  }
}

export const pct = (v) => (v === undefined || v === null ? '–' : (100 * v).toFixed(1) + '%');

export function notice(text) {
  $('notice').textContent = text || '';
  $('notice').hidden = !text;
}

/** Saves bytes as a file, in the page (nothing leaves the browser). */
export function download(name, bytes, type = 'application/octet-stream') {
  const url = URL.createObjectURL(new Blob([bytes], { type }));
  const a = Object.assign(document.createElement('a'), { href: url, download: name });
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/**
 * Wires the "Download model" links `${prefix}-plm`, `-safetensors` and `-onnx`:
 * each saves the shown model as `${base}.<format>` and notes its size.
 * `ready()` says whether there is a model to save.
 */
export function modelDownloads(engine, prefix, base, ready = () => true) {
  for (const format of ['plm', 'safetensors', 'onnx']) {
    $(`${prefix}-${format}`).addEventListener('click', async (e) => {
      e.preventDefault();
      if (!ready()) return;
      try {
        const { bytes, size } = await engine.call('exportModel', { format });
        download(`${base}.${format}`, bytes);
        notice(`Saved ${base}.${format}: ${size}.`);
      } catch (err) {
        notice(`Could not export the model: ${err.message || err}`);
      }
    });
  }
}

/**
 * Binds an input to a state key: fills it (its range, step and options from
 * the key's entry in SETTINGS, the one source of them), and calls `changed`
 * on edits.
 */
export function bind(id, state, key, changed, parse = (v) => v) {
  const input = $(id);
  const out = $(`${id}-out`);
  const s = setting(key);
  if (s) {
    for (const attr of ['min', 'max', 'step']) if (s[attr] !== undefined) input[attr] = s[attr];
    if (input.tagName === 'SELECT' && Array.isArray(s.options)) {
      input.replaceChildren(...s.options.map((value, i) => Object.assign(document.createElement('option'), { value, textContent: s.labels?.[i] ?? value })));
    }
  }
  const show = () => {
    if (out) out.textContent = input.type === 'range' && Number(input.max) <= 1 ? pct(state[key]) : String(state[key]);
  };
  input.value = state[key];
  show();
  input.addEventListener(input.type === 'range' ? 'input' : 'change', () => {
    state[key] = parse(input.type === 'number' || input.type === 'range' ? Number(input.value) : input.value);
    show();
    changed(key);
  });
}
