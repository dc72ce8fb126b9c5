// Per-layer widths before and after pruning, as paired bars.
export function drawWidths(canvas, widths) {
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
    if (widths.length <= 24 || i % 3 === 0) {
      ctx.save();
      ctx.translate(x + slot * 0.4, height - 2);
      ctx.fillStyle = '#667085';
      ctx.fillText(name.replace(/^stage(\d)\.block(\d+)\.conv1$/, 's$1b$2'), -slot * 0.4, 0);
      ctx.restore();
    }
  });
}
