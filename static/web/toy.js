// The toy lab: 2-D data, a small network, live boundary and network views,
// a pruning slider that re-prunes at once from cached importances, and S1's
// gated pass with its gates drawn as they polarize.
import { drawBoundary, drawUnitMap } from './views/boundary.js';
import { drawNetwork } from './views/network.js';
import { drawCurves } from './views/charts.js';
import { drawGates } from './views/gates.js';
import { S1_EPOCHS, scoreOptions, toyConfig, writeState } from './state.js';
import { publish } from './mirror.js';
import { labSession } from './session.js';
import { $, bind, human, modelDownloads, notice, pct, showComparison } from './ui.js';

const DATASETS = ['spiral', 'circles', 'xor', 'gaussians', 'moons', 'tfp-spiral'];
const EXTENT = 1.5;
const RES = 64;
const UNIT_RES = 20; // each hidden unit's own map in the network view
// `auto` trains the toy lab on the CPU: a tiny network's step is dozens of
// kernel dispatches and a read back, which no GPU path wins (docs/benchmarks.md,
// "Which device `auto` picks"). `webgpu` asks the engine for WebGPU with the
// CPU as fallback (the engine's `auto`), said in a notice.
const deviceFor = (choice) => ({ auto: 'cpu', webgpu: 'auto' }[choice] ?? choice);

export function toyLab(engine, state, onLost) {
  const session = labSession(engine, (patch) => publish(patch));
  let data = null;         // points and labels
  let info = null;         // engine info
  let csvText = null;      // an uploaded CSV, kept for resets
  let running = false;
  let generation = 0;
  let selected = null;     // {layer, unit} shown in the output panel
  let gateHistory = [];
  let chunk = 1;           // epochs per engine call, grown while a call fits in a frame
  let status = 'starting';
  let frames = 0;          // boundaries drawn
  let timing = null;       // what the frames cost (for the benchmarks)

  const save = () => writeState(state);

  function setStatus(phase) {
    status = phase;
    publish({ state: phase });
    document.body.dataset.state = phase;
  }

  /** One engine round trip: `steps` of training (0: none), then the views. */
  const frame = (steps = 0) => engine.call('frame', {
    steps, resolution: RES, extent: EXTENT, unit: selected, unitResolution: UNIT_RES,
  });

  /** Draws a frame's views (fetching them when not given). */
  async function redraw(views = null) {
    if (!info) return;
    const { boundary, maps, network: layers } = views ?? await frame();
    if (selected) {
      drawUnitMap($('boundary'), boundary, RES, EXTENT, data.test.points, data.test.labels);
      $('boundary-caption').textContent = `Neuron ${selected.unit} of ${selected.layer} (click the plot to go back)`;
    } else {
      drawBoundary($('boundary'), boundary, RES, info.classes, EXTENT, data.test.points, data.test.labels);
      $('boundary-caption').textContent = 'Decision boundary over the test points';
    }
    frames += 1;
    // Maps the engine sent for hidden units (the output layer has none drawn).
    const hidden = new Set(layers.slice(0, -1).map((l) => l.name));
    publish({
      boundaryFrames: frames,
      network: layers.map((l) => ({ name: l.name, outputs: l.outputs, alive: l.unit_alive.filter(Boolean).length, gates: !!l.gates })),
      unitMaps: maps.filter((m) => hidden.has(m.layer)).reduce((n, m) => n + m.maps.length, 0),
    });
    drawNetwork($('network'), layers, {
      classes: info.classes, selected, maps,
      onUnit: (layer, unit) => { selected = { layer, unit }; redraw(); },
    });
    drawCurves($('chart'), session.losses, session.accuracies);
  }

  // Whether the sizes table shows a pruned column; until it does, the dense
  // column's accuracy follows training, epoch by epoch.
  let prunedShown = false;
  function showSizes(report) {
    const set = (id, v) => ($(id).textContent = v);
    prunedShown = !!report;
    if (!report) {
      set('acc-dense', pct(session.accuracies.at(-1)));
      set('params-dense', human(info.params));
      set('macs-dense', human(info.macs));
      set('bytes-dense', human(4 * info.params));
      for (const k of ['acc', 'params', 'macs', 'bytes']) set(`${k}-pruned`, '–');
      $('plan').replaceChildren();
      return;
    }
    publish({ pruned: report });
    showComparison(report, '', ['acc', 'params', 'macs', 'bytes']);
    $('plan').replaceChildren(...report.plan.slice(0, 8).map((line) => Object.assign(document.createElement('li'), { textContent: line })));
  }

  /** A new session; `resume` continues from the last epoch's snapshot (after a lost GPU). */
  // `trainsNow`: training follows at once (autoplay, resume), so the worker
  // need not warm V8's optimiser while the page waits for a click.
  async function create(resume = false, trainsNow = resume) {
    const mine = ++generation;
    running = false;
    selected = null;
    if (!resume) {
      gateHistory = [];
      chunk = 1;
      session.reset();
      publish({ pruned: null, gates: [] });
      // A new session is dense until S1 is run again.
      if (state.mode !== 'dense') { state.mode = 'dense'; save(); }
    }
    publish({ error: null });
    setStatus('starting');
    try {
      const created = await engine.call('create', {
        config: toyConfig(state), device: deviceFor(state.device),
        csv: state.dataset === 'csv' ? csvText : null,
        snapshot: resume ? session.snapshot : null,
        warm: !trainsNow,
      });
      if (mine !== generation) return;
      ({ info } = created);
      data = created;
      publish({ device: info.device, kind: info.kind, params: info.params });
      $('device-info').textContent = info.device.replace(/: WebGPU is unavailable.*$/s, '');
      $('epoch').textContent = '0';
      notice(info.kind === 'cpu' && state.device === 'webgpu'
        ? `WebGPU is not available in this browser, so the network trains on the CPU (WebAssembly).${whyNoGpu(info.device)}`
        : '');
      if (info.kind === 'webgpu') setStatus('compiling');
      showSizes(null);
      drawGates($('gates'), gateHistory);
      await redraw();
      setStatus('ready');
    } catch (e) {
      fail(e);
    }
  }

  function fail(e) {
    if (e.restarted) return; // superseded by the session that replaced it
    const error = String(e.message || e);
    publish({ error });
    setStatus('error');
    if (e.lost) onLost(e);
    else notice(`Error: ${error}`);
  }

  async function trainLoop(epochsToRun = Infinity) {
    if (running || !info) return;
    running = true;
    const mine = generation;
    setStatus('training');
    $('play').textContent = '❚❚ Pause';
    try {
      // Several epochs per engine call, as many as keep a call near 45 ms:
      // the per-call round trip and the views, not the training steps, bound
      // a tiny network's rate. One call is always in flight: the engine
      // trains the next frame while the page draws this one.
      let requested = 0;
      const ask = () => {
        const epochsNow = Math.max(1, Math.min(chunk, epochsToRun - requested));
        requested += epochsNow;
        return { at: performance.now(), epochs: epochsNow, reply: frame(info.steps_per_epoch * epochsNow) };
      };
      let next = ask();
      while (next) {
        const views = await next.reply;
        if (mine !== generation) return;
        const { report } = views;
        // The next call: as many epochs as take ~45 ms at this call's pace.
        const msPerEpoch = (performance.now() - next.at) / next.epochs;
        chunk = Math.max(1, Math.min(64, Math.round(45 / msPerEpoch)));
        next = running && !report.finished && !report.cut && requested < epochsToRun ? ask() : null;
        const epochs = session.record(report);
        if (epochs.length && !prunedShown) $('acc-dense').textContent = pct(session.accuracies.at(-1));
        $('epoch').textContent = String(report.epoch);
        if (report.gates.length) {
          gateHistory.push(...report.gates);
          publish({ gates: gateHistory.map((g) => ({ epoch: g.epoch, kept: g.kept, undecided: g.undecided, frozen: g.frozen })) });
          drawGates($('gates'), gateHistory);
        }
        if (report.cut) {
          showSizes(report.cut);
          info = await engine.call('info');
          const learned = report.gated_details?.learned;
          const settle = report.gated_details?.settle;
          if (learned) {
            // Say what the regulariser achieved on its own, and what settle added.
            const flips = settle?.enabled ? `; settle flipped ${settle.flipped_units + settle.flipped_blocks} gates` : '';
            notice(`S1 learned to remove ${pct(learned.removed)} of the MACs (target ${pct(learned.target)}), ${pct(learned.decided_share)} of gates decided${flips}.`);
          }
        }
        // S1's gated pass is not resumable from a snapshot.
        if (epochs.length && !report.gates.length) session.keepSnapshot(() => mine === generation);
        const d0 = performance.now();
        await redraw(views);
        timing ??= { frames: 0, drawMs: 0, epochs: 0, steps: 0, reads: 0 };
        Object.assign(timing, { frames: timing.frames + 1, drawMs: timing.drawMs + performance.now() - d0, chunk });
        timing.epochs += epochs.length;
        timing.steps += report.events.filter((e) => e.type === 'step').length;
        timing.reads += views.reads ?? 0;
        publish({ timing: { ...timing } });
        if (report.finished) {
          running = false;
          setStatus('done');
          // A finished S1 pass: a link made from here on no longer replays it.
          if (state.mode === 's1' && report.cut) { state.mode = 'dense'; save(); }
        }
      }
    } catch (e) {
      running = false;
      fail(e);
    }
    $('play').textContent = '▶ Train';
    if (status === 'training') setStatus('paused');
  }

  // Controls that change quickly (the slider, then the streams choice) start
  // several prunes; only the latest may show its result and say 'pruned',
  // or the page would report a cut while drawing an older one.
  let pruneGeneration = 0;
  async function prune() {
    if (!info || running) return;
    const mine = ++pruneGeneration;
    try {
      setStatus('pruning');
      const report = await session.prune(state.method, scoreOptions(state.streams), state.amount);
      if (mine !== pruneGeneration) return;
      showSizes(report);
      publish({ params: report.pruned.params });
      await redraw();
      if (mine !== pruneGeneration) return;
      setStatus('pruned');
    } catch (e) {
      fail(e);
    }
  }

  // Controls.
  const changed = (key) => {
    save();
    if (['method', 'amount', 'streams'].includes(key)) prune();
    else if (!['s1target', 'device'].includes(key)) create();
  };
  $('datasets').replaceChildren(...DATASETS.map((name) => {
    const b = Object.assign(document.createElement('button'), { type: 'button', textContent: name, className: 'dataset' });
    b.setAttribute('role', 'radio');
    b.addEventListener('click', () => { state.dataset = name; markDataset(); changed('dataset'); });
    return b;
  }));
  const markDataset = () => {
    for (const b of $('datasets').children) b.setAttribute('aria-checked', String(b.textContent === state.dataset));
  };
  markDataset();
  bind('noise', state, 'noise', changed);
  bind('points', state, 'points', changed);
  bind('seed', state, 'seed', changed, (v) => Math.max(0, Math.floor(v)));
  bind('lr', state, 'lr', changed);
  bind('batch', state, 'batch', changed, (v) => Math.max(1, Math.floor(v)));
  bind('epochs', state, 'epochs', changed, (v) => Math.max(0, Math.floor(v)));
  bind('model', state, 'model', changed);
  bind('activation', state, 'activation', changed);
  bind('init', state, 'init', changed);
  bind('method', state, 'method', changed);
  bind('amount', state, 'amount', changed);
  bind('streams', state, 'streams', changed);
  bind('s1target', state, 's1target', changed);
  const showLayers = () => {
    $('layer-count').textContent = state.hidden.length;
    $('width').textContent = state.hidden[0];
  };
  showLayers();
  const editLayers = (f) => () => { state.hidden = f(state.hidden); showLayers(); changed('hidden'); };
  $('layer-plus').addEventListener('click', editLayers((h) => (h.length < 6 ? [...h, h.at(-1)] : h)));
  $('layer-minus').addEventListener('click', editLayers((h) => (h.length > 1 ? h.slice(0, -1) : h)));
  $('width-plus').addEventListener('click', editLayers((h) => h.map((w) => Math.min(48, w + 4))));
  $('width-minus').addEventListener('click', editLayers((h) => h.map((w) => Math.max(4, w - 4))));
  $('csv').addEventListener('change', async (e) => {
    const file = e.target.files[0];
    if (!file) return;
    csvText = await file.text();
    state.dataset = 'csv';
    markDataset();
    changed('dataset');
  });
  $('play').addEventListener('click', () => (running ? (running = false) : trainLoop()));
  $('step').addEventListener('click', () => trainLoop(1));
  $('reset').addEventListener('click', () => create());
  $('finetune').addEventListener('click', async () => {
    await engine.call('finetune', { epochs: 10 });
    state.amount = 0;
    $('amount').value = 0;
    $('amount-out').textContent = pct(0);
    save();
    trainLoop();
  });
  $('s1').addEventListener('click', async () => {
    if (running) return;
    gateHistory = [];
    session.reset({ keepSnapshot: true });
    publish({ gates: [] });
    state.mode = 's1';
    save();
    await engine.call('startGated', { macs: state.s1target, options: { polarization: { epochs: state.epochs || S1_EPOCHS } } });
    trainLoop();
  });
  $('boundary').addEventListener('click', () => { if (selected) { selected = null; redraw(); } });
  $('share').addEventListener('click', async (e) => {
    e.preventDefault();
    save();
    try { await navigator.clipboard.writeText(location.href); notice('Link copied: it reproduces this run (same seed, same settings).'); } catch { notice(location.href); }
  });
  modelDownloads(engine, 'download-toy', 'toy');

  return {
    async start(autoplay) {
      const replayS1 = autoplay && state.mode === 's1';
      await create(false, autoplay);
      if (autoplay) {
        if (replayS1) $('s1').click();
        else {
          await trainLoop();
          if (state.amount > 0) await prune();
        }
      }
    },
    recreate: create,
    /** After a lost device: a CPU session from the last snapshot, then train on. */
    async resume() {
      await create(true);
      if (status !== 'error') trainLoop();
    },
  };
}

/** The first line of the engine's reason for falling back, if it gave one
 *  (wgpu's errors run to several lines of Rust detail). */
function whyNoGpu(device) {
  const reason = /WebGPU is unavailable \((.*)/s.exec(device)?.[1]?.split('\n')[0]
    // wgpu's Rust detail: "No adapter available for WgpuDevice { … }: A; B; C".
    .replace(/^No adapter available for \w+ \{[^}]*\}:\s*/, '').split(';')[0].replace(/\)$/, '').trim();
  return reason ? ` (${reason.length > 140 ? `${reason.slice(0, 140)}…` : reason})` : '';
}
