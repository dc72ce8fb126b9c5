// Per-group widths before and after pruning, as paired bars; `marked` (an
// index) is outlined — the group the pointer is on. The colours are the
// legend's in static/index.html (#widths-legend, .swatch in style.css).
export function drawWidths(canvas, widths, marked = -1) {
  const ctx = canvas.getContext('2d');
  const { width, height } = canvas;
  ctx.clearRect(0, 0, width, height);
  if (!widths.length) return;
  const max = Math.max(...widths.map(([, d]) => d));
  const slot = (width - 20) / widths.length;
  ctx.font = '10px system-ui';
  widths.forEach(([name, dense, now], i) => {
    const x = 10 + i * slot;
    const h = (v) => (v / max) * (height - 30);
    ctx.fillStyle = '#d0d5dd';
    ctx.fillRect(x, height - 20 - h(dense), slot * 0.8, h(dense));
    ctx.fillStyle = now < dense ? '#e8590c' : '#1971c2';
    ctx.fillRect(x + slot * 0.15, height - 20 - h(now), slot * 0.5, h(now));
    if (i === marked) {
      ctx.strokeStyle = '#f08c00';
      ctx.lineWidth = 2;
      ctx.strokeRect(x - 1, height - 21 - h(dense), slot * 0.8 + 2, h(dense) + 2);
    }
    if (widths.length <= 24 || i % 3 === 0) {
      ctx.save();
      ctx.translate(x + slot * 0.4, height - 2);
      ctx.fillStyle = '#667085';
      ctx.fillText(name.replace(/^stage(\d)\.block(\d+)\.conv1$/, 's$1b$2').replace(/^stage(\d)\.stream$/, 's$1 stream'), -slot * 0.4, 0);
      ctx.restore();
    }
  });
}

/** The bar under canvas x-coordinate `x` (CSS pixels), or -1. */
export function barAt(canvas, widths, x) {
  const scale = canvas.width / (canvas.clientWidth || canvas.width);
  const slot = (canvas.width - 20) / Math.max(1, widths.length);
  const i = Math.floor((x * scale - 10) / slot);
  return i >= 0 && i < widths.length ? i : -1;
}

/** What is cut with group `g`, in words. */
export function coupling(g, now) {
  const list = (names) => (names.length > 6 ? [...names.slice(0, 6), `… ${names.length - 6} more`] : names).join(', ');
  return `${g.name}: ${g.size} → ${now} ${g.kind === 'neuron' ? 'neurons' : 'channels'}. `
    + `A unit goes from the outputs of ${list(g.producers)} and the inputs of ${list(g.consumers)}.`;
}
