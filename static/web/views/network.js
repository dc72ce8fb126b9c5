// The network as a graph: one column of nodes per layer, links as wide as
// |w|; pruned weights and units greyed out, gates coloured by their value.
// Receives the engine's layer views; calls `onUnit(layer, unit)` on a click.
// Pointing at a unit (or selecting it) outlines its coupling group: the same
// unit of every layer in its group (resmlp's stem and conv2s share one
// residual stream) and the weights that go with them, in and out.
// Given `maps` (the engine's unit maps), every hidden unit is drawn as its
// own live heatmap over the input plane, as in TensorFlow Playground.
import { unitColour } from './boundary.js';

const SVG = 'http://www.w3.org/2000/svg';

function el(name, attrs, parent) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

/** Gate value g in [0, 1] → a colour from grey-blue (closed) to orange (open). */
function gateColour(g) {
  const a = [134, 142, 150], b = [232, 89, 12];
  return `rgb(${a.map((v, i) => Math.round(v + (b[i] - v) * g)).join(',')})`;
}

export function drawNetwork(container, layers, { inputs = ['x', 'y'], classes = 2, selected = null, maps = [], onUnit = () => {} } = {}) {
  const width = container.clientWidth || 520;
  const maxUnits = Math.max(inputs.length, ...layers.map((l) => l.outputs));
  const pitch = maps.length ? 30 : 16;
  const height = Math.max(220, Math.min(520, maxUnits * pitch + 40));
  const columns = layers.length + 1;
  // Where the columns are closer than the labels are wide (a deep resmlp),
  // every other label drops to a second row instead of overlapping (~6 px a
  // character of the 10 px label font).
  const labelWidth = 6 * Math.max(...layers.map((l) => shortName(l.name).length + 6));
  const rows = labelWidth > (width - 60) / columns ? 2 : 1;
  const total = height + (rows - 1) * 12;
  const svg = el('svg', { width, height: total, viewBox: `0 0 ${width} ${total}`, role: 'img', 'aria-label': 'network' });
  const x = (c) => 30 + (c / columns) * (width - 60);
  const step = (n) => Math.min(pitch, (height - 40) / Math.max(1, n));
  const y = (i, n) => height / 2 + (i - (n - 1) / 2) * step(n);
  const tiles = [];
  const links = el('g', {}, svg);
  const nodes = el('g', {}, svg);

  // Inputs.
  inputs.forEach((name, i) => {
    el('circle', { cx: x(0), cy: y(i, inputs.length), r: 6, class: 'node input' }, nodes);
    el('text', { x: x(0) - 12, y: y(i, inputs.length) + 4, 'text-anchor': 'end', class: 'label' }, nodes).textContent = name;
  });
  let previousAlive = inputs.map(() => true);
  layers.forEach((layer, c) => {
    const max = Math.max(1e-9, ...layer.magnitude);
    const n = layer.outputs;
    for (let i = 0; i < layer.inputs; i++) {
      for (let o = 0; o < n; o++) {
        const m = layer.magnitude[i * n + o] / max;
        if (m < 0.02) continue;
        const alive = previousAlive[i] && layer.unit_alive[o] && (!layer.weight_alive || layer.weight_alive[i * n + o]);
        el('line', {
          x1: x(c), y1: y(i, layer.inputs), x2: x(c + 1), y2: y(o, n),
          'stroke-width': (0.3 + 3.2 * m).toFixed(2),
          class: alive ? 'link' : 'link pruned',
          'data-out-group': layer.group ?? '', 'data-in-group': layer.reads ?? '', 'data-in': i, 'data-out': o,
        }, links);
      }
    }
    const last = c === layers.length - 1;
    for (let o = 0; o < n; o++) {
      const alive = layer.unit_alive[o];
      const gate = layer.gates ? layer.gates[o] : null;
      const node = el('circle', {
        cx: x(c + 1), cy: y(o, n), r: last ? 7 : 5.5,
        class: `node${alive ? '' : ' pruned'}${last ? ' output' : ''}${selected && selected.layer === layer.name && selected.unit === o ? ' selected' : ''}`,
        'data-layer': layer.name, 'data-unit': o, 'data-group': layer.group ?? '',
      }, nodes);
      if (gate !== null) node.style.fill = gateColour(gate);
      const title = el('title', {}, node);
      title.textContent = `${layer.name} #${o}${gate !== null ? ` · gate ${gate.toFixed(2)}` : ''}${alive ? '' : ' · pruned'}`;
      const map = last ? null : maps.find((m) => m.layer === layer.name);
      if (map) {
        const size = Math.max(6, Math.floor(step(n)) - 3);
        node.setAttribute('r', (size / 2 + 1.5).toFixed(1));
        node.classList.add('mapped');
        tiles.push(unitTile(map, o, size, x(c + 1), y(o, n), node));
      }
      if (!last) {
        node.addEventListener('click', () => onUnit(layer.name, o));
        node.addEventListener('mouseenter', () => highlight(svg, layer.group, o));
        node.addEventListener('mouseleave', () => highlight(svg, selectedGroup(layers, selected), selected?.unit));
      }
    }
    const text = last ? `out (${classes})` : `${shortName(layer.name)} ${layer.unit_alive.filter(Boolean).length}/${n}`;
    const row = rows > 1 && c % 2 === 1 ? 1 : 0;
    const label = el('text', { x: x(c + 1), y: height - 6 + 12 * row, 'text-anchor': 'middle', class: 'label' }, nodes);
    label.textContent = text;
    el('title', {}, label).textContent = layer.name;
    previousAlive = layer.unit_alive;
  });
  container.replaceChildren(svg, ...tiles);
  highlight(svg, selectedGroup(layers, selected), selected?.unit);
}

/** A layer's name as its column label: ResNet convs as `b<block>.<conv>`. */
function shortName(name) {
  return name.replace(/^stage(\d+)\.block(\d+)\.conv(\d)$/, (_, s, b, k) => `b${b}.${k}`);
}

/** Unit `o`'s map as a small canvas centred on its node (drawn over the
 * SVG, letting pointer events through to the node beneath). */
function unitTile(map, o, size, cx, cy, node) {
  const canvas = document.createElement('canvas');
  canvas.className = ['unit-map', ...['pruned', 'selected'].filter((c) => node.classList.contains(c))].join(' ');
  Object.assign(canvas.dataset, { layer: node.dataset.layer, unit: o, group: node.dataset.group });
  canvas.width = canvas.height = map.resolution;
  Object.assign(canvas.style, { left: `${cx - size / 2}px`, top: `${cy - size / 2}px`, width: `${size}px`, height: `${size}px` });
  const values = map.maps[o];
  if (values) {
    const image = new ImageData(map.resolution, map.resolution);
    const scale = Math.max(1e-6, ...values.map(Math.abs));
    for (let cell = 0; cell < values.length; cell++) image.data.set(unitColour(values[cell] / scale), cell * 4);
    canvas.getContext('2d').putImageData(image, 0, 0);
  }
  return canvas;
}

function selectedGroup(layers, selected) {
  return selected ? layers.find((l) => l.name === selected.layer)?.group : null;
}

/** Outlines unit `unit` of group `group` everywhere: its nodes, the weights
 * that produce it and the weights that read it (nothing when `group` is unset). */
export function highlight(svg, group, unit) {
  const root = svg.parentNode ?? svg; // the nodes' map tiles sit beside the SVG
  for (const e of root.querySelectorAll('.coupled')) e.classList.remove('coupled');
  if (!group) return;
  const u = String(unit);
  for (const node of root.querySelectorAll('[data-group]')) {
    if (node.dataset.group === group && node.dataset.unit === u) node.classList.add('coupled');
  }
  for (const line of svg.querySelectorAll('line[data-in]')) {
    const out = line.dataset.outGroup === group && line.dataset.out === u;
    const into = line.dataset.inGroup === group && line.dataset.in === u;
    if (out || into) line.classList.add('coupled');
  }
}
