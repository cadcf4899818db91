// A top-down pitch on a canvas (105 x 68 m), and what is drawn on it: heatmaps and players.

export const PITCH: [number, number] = [105, 68];
export const GRASS = "#1f5d38";
export const LINE = "rgba(255,255,255,0.75)";
export const TEAM_COLOURS: Record<number, string> = { 1: "#ffd166", 0: "#7cc6fe", [-1]: "#d0d0d0" };

export type View = { ctx: CanvasRenderingContext2D; scale: number; pad: number; width: number; height: number };

/** Size ``canvas`` for its CSS width and the device's pixels; the drawing maps metres to it. */
export function prepare(canvas: HTMLCanvasElement, pitch: [number, number] = PITCH): View {
  const pad = 3; // metres of grass around the lines
  const cssWidth = canvas.clientWidth || 420;
  const ratio = window.devicePixelRatio || 1;
  const scale = (cssWidth / (pitch[0] + 2 * pad)) * ratio;
  const width = Math.round((pitch[0] + 2 * pad) * scale);
  const height = Math.round((pitch[1] + 2 * pad) * scale);
  if (canvas.width !== width || canvas.height !== height) {
    canvas.width = width;
    canvas.height = height;
  }
  const ctx = canvas.getContext("2d")!;
  return { ctx, scale, pad, width, height };
}

/** Canvas pixels of pitch metres. */
export function at(view: View, x: number, y: number): [number, number] {
  return [(x + view.pad) * view.scale, (y + view.pad) * view.scale];
}

export function drawPitch(view: View, pitch: [number, number] = PITCH, grass = GRASS): void {
  const { ctx, scale } = view;
  const [length, width] = pitch;
  ctx.fillStyle = grass;
  ctx.fillRect(0, 0, view.width, view.height);
  ctx.strokeStyle = LINE;
  ctx.lineWidth = Math.max(1, 0.25 * scale);
  const rect = (x: number, y: number, w: number, h: number) => {
    const [px, py] = at(view, x, y);
    ctx.strokeRect(px, py, w * scale, h * scale);
  };
  rect(0, 0, length, width);
  ctx.beginPath();
  ctx.moveTo(...at(view, length / 2, 0));
  ctx.lineTo(...at(view, length / 2, width));
  ctx.stroke();
  ctx.beginPath();
  ctx.arc(...at(view, length / 2, width / 2), 9.15 * scale, 0, Math.PI * 2);
  ctx.stroke();
  for (const side of [0, 1]) {
    const x0 = side === 0 ? 0 : length;
    const dir = side === 0 ? 1 : -1;
    const box = (depth: number, across: number) => rect(side === 0 ? x0 : x0 - depth, width / 2 - across / 2, depth, across);
    box(16.5, 40.32);
    box(5.5, 18.32);
    ctx.beginPath();
    ctx.arc(...at(view, x0 + dir * 11, width / 2), Math.max(1, 0.4 * scale), 0, Math.PI * 2);
    ctx.fillStyle = LINE;
    ctx.fill();
  }
}

/** Counts per cell ([ix][iy]) as a colour ramp over the pitch, scaled to the busiest cell. */
export function drawHeat(view: View, grid: number[][], pitch: [number, number] = PITCH): void {
  const { ctx } = view;
  const nx = grid.length;
  const ny = grid[0]?.length ?? 0;
  const peak = Math.max(1, ...grid.flat());
  const cw = pitch[0] / nx;
  const ch = pitch[1] / ny;
  for (let ix = 0; ix < nx; ix++) {
    for (let iy = 0; iy < ny; iy++) {
      const value = grid[ix][iy] / peak;
      if (value <= 0) continue;
      ctx.fillStyle = ramp(value);
      const [px, py] = at(view, ix * cw, iy * ch);
      ctx.fillRect(px, py, cw * view.scale + 0.5, ch * view.scale + 0.5);
    }
  }
}

// Transparent blue through yellow to red: readable on the grass, not by hue alone (alpha too).
function ramp(value: number): string {
  const stops: [number, [number, number, number]][] = [
    [0, [49, 54, 149]],
    [0.35, [69, 117, 180]],
    [0.6, [254, 224, 144]],
    [0.8, [244, 109, 67]],
    [1, [165, 0, 38]],
  ];
  let i = 1;
  while (i < stops.length - 1 && value > stops[i][0]) i++;
  const [v0, c0] = stops[i - 1];
  const [v1, c1] = stops[i];
  const t = Math.min(1, Math.max(0, (value - v0) / (v1 - v0)));
  const c = c0.map((c, k) => Math.round(c + (c1[k] - c) * t));
  return `rgba(${c[0]},${c[1]},${c[2]},${(0.35 + 0.6 * value).toFixed(2)})`;
}

export function drawDot(view: View, x: number, y: number, radiusM: number, fill: string, label?: string): void {
  const { ctx, scale } = view;
  const [px, py] = at(view, x, y);
  ctx.beginPath();
  ctx.arc(px, py, radiusM * scale, 0, Math.PI * 2);
  ctx.fillStyle = fill;
  ctx.fill();
  ctx.lineWidth = Math.max(1, 0.25 * scale);
  ctx.strokeStyle = "rgba(0,0,0,0.7)";
  ctx.stroke();
  if (label) {
    ctx.fillStyle = "#000";
    ctx.font = `${Math.round(1.3 * scale)}px system-ui, sans-serif`;
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.fillText(label, px, py);
  }
}
