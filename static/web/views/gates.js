// S1's gates over the one pass: a column per epoch, the gates' soft values
// binned from 0 (bottom) to 1 (top); dark = many gates. The split into open
// and closed is the polarization at work.
export function drawGates(canvas, history) {
  const ctx = canvas.getContext('2d');
  const { width, height } = canvas;
  ctx.clearRect(0, 0, width, height);
  ctx.fillStyle = '#667085';
  ctx.font = '11px system-ui';
  if (!history.length) {
    ctx.fillText('gate values appear here during the S1 pass', 8, height / 2);
    return;
  }
  const bins = 20;
  const col = (width - 30) / Math.max(history.length, 10);
  history.forEach((report, e) => {
    const values = [...report.units.flat(), ...report.blocks];
    const counts = new Array(bins).fill(0);
    for (const g of values) counts[Math.min(bins - 1, Math.floor(g * bins))]++;
    const max = Math.max(...counts);
    counts.forEach((c, b) => {
      const a = c ? 0.15 + 0.85 * (c / max) : 0;
      ctx.fillStyle = `rgba(232, 89, 12, ${a})`;
      ctx.fillRect(26 + e * col, height - 14 - ((b + 1) / bins) * (height - 22), Math.max(1, col - 1), (height - 22) / bins);
    });
  });
  ctx.fillStyle = '#667085';
  ctx.fillText('1', 8, 14);
  ctx.fillText('0', 8, height - 14);
  const last = history.at(-1);
  ctx.fillText(`epoch ${last.epoch} · ${(100 * last.kept).toFixed(0)}% of MACs kept · ${last.undecided} undecided${last.frozen ? ' · frozen' : ''}`, 26, height - 2);
}
