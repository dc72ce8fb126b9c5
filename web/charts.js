// A line (training loss per step) and dots (test accuracy per epoch) on one
// canvas; receives plain arrays.
export function drawChart(canvas, losses, accuracies) {
  const ctx = canvas.getContext('2d');
  const { width, height } = canvas;
  const pad = 24;
  ctx.clearRect(0, 0, width, height);
  ctx.strokeStyle = '#ddd';
  ctx.strokeRect(pad, 4, width - pad - 4, height - pad - 4);
  if (losses.length < 2) return;
  const max = Math.max(...losses);
  const x = (i, n) => pad + (i / Math.max(1, n - 1)) * (width - pad - 8);
  ctx.beginPath();
  losses.forEach((l, i) => {
    const y = 4 + (1 - l / max) * (height - pad - 8);
    i ? ctx.lineTo(x(i, losses.length), y) : ctx.moveTo(x(i, losses.length), y);
  });
  ctx.strokeStyle = '#e8590c';
  ctx.lineWidth = 1.5;
  ctx.stroke();
  ctx.fillStyle = '#1971c2';
  accuracies.forEach((a, i) => {
    const px = x(i + 1, accuracies.length + 1);
    const py = 4 + (1 - a) * (height - pad - 8);
    ctx.beginPath();
    ctx.arc(px, py, 3, 0, 2 * Math.PI);
    ctx.fill();
  });
  ctx.fillStyle = '#667085';
  ctx.font = '11px system-ui';
  ctx.fillText(`loss ≤ ${max.toFixed(2)}`, pad + 4, height - 8);
}
