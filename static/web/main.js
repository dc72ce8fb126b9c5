// Wires the page: the URL state, the tabs, the device picker, the engine
// worker, and a fallback to the CPU when the GPU device is lost.
import { startEngine } from './engine.js';
import { applyMethods, readState, writeState } from './state.js';
import { toyLab } from './toy.js';
import { cifarLab } from './cifar.js';
import { publish } from './mirror.js';
import { $, bind, notice } from './ui.js';

const state = readState();
// Read before the hash is rewritten: tests and tutorials start training on load.
const autoplay = new URLSearchParams(location.hash.slice(1)).get('autoplay') === '1';

// Test hooks, apart from the views' data: the browser tests lose the GPU on purpose.
window.__prunelabTest = { loseDevice: () => engine.call('loseDevice') };

if (state.embed) document.body.classList.add('embed');
// One engine per lab: each keeps its own session (and GPU device) alive.
let lostOnce = false;
const engine = startEngine({
  onLost: (e) => { if (!lostOnce) { lostOnce = true; onLost(e); } },
  // The worker's head start on V8's optimiser (static/web/worker.js), for the benchmarks.
  onEvent: (e) => { if (e.event === 'warmup') publish({ warmup: { state: e.state, epochs: e.epochs, ms: e.ms.map(Math.round) } }); },
});
// The CIFAR lab's convolutions use every core where the page is cross-origin
// isolated; the toy lab's tiny steps would only pay the threads' overhead.
const cifarEngine = startEngine({ threads: true });

let lost = false;
async function onLost(error) {
  // A lost GPU: keep the settings, restart the engine on the CPU, say so.
  if (lost) return;
  lost = true;
  publish({ lost });
  engine.restart();
  state.device = 'cpu';
  $('device').value = 'cpu';
  writeState(state);
  await toy.resume();
  // The engine's message already starts with "the GPU device was lost".
  const reason = error.message.replace(/^the GPU device was lost:?\s*/i, '');
  notice(`The GPU device was lost${reason ? ` (${reason})` : ''}; the lab continues on the CPU from the last epoch, with the same settings.`);
}

// The method lists come from the engine's registry.
const catalog = await engine.call('methods');
const methods = applyMethods(catalog, state).map((m) => m.name);
// When each method acts: at-initialisation ones (S4's lottery, SNIP) rank θ₀.
const phases = Object.fromEntries(catalog.map((m) => [m.name, m.phase]));
publish({ methods, phases });

const toy = toyLab(engine, state, onLost);
const cifar = cifarLab(cifarEngine, state, { methods, phases });

function showLab(name) {
  // A notice belongs to the lab that raised it (S1's summary, a saved file).
  if (name !== state.lab) notice('');
  state.lab = name;
  writeState(state);
  $('toy-lab').hidden = name !== 'toy';
  $('cifar-lab').hidden = name !== 'cifar';
  for (const b of document.querySelectorAll('.tab')) b.setAttribute('aria-selected', String(b.dataset.lab === name));
}
for (const b of document.querySelectorAll('.tab')) b.addEventListener('click', () => showLab(b.dataset.lab));
bind('device', state, 'device', () => {
  writeState(state);
  if (state.lab === 'toy') toy.recreate(); else cifar.reload();
});
showLab(state.lab);
writeState(state);
toy.start(autoplay && state.lab === 'toy');
