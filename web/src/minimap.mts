// The minimap: every player (and the ball) on a top-down pitch at the video's current time,
// from the analytics API's track points, fetched a window at a time.
import { api, type Ball, type Tracks } from "./api.mts";
import { clock, h } from "./dom.mts";
import { drawDot, drawPitch, prepare, TEAM_COLOURS } from "./pitch.mts";

const WINDOW_S = 20;
const NEAR_S = 0.3; // a track is shown where it has a point this close to the time

type Window = { tracks: Tracks; ball: Ball | null };
type Point = [number, number, number, ...unknown[]];

/** The position at ``t`` from points sorted by time: interpolated, or null when none is near. */
export function positionAt(points: Point[], t: number): [number, number] | null {
  if (points.length === 0) return null;
  let lo = 0;
  let hi = points.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (points[mid][0] < t) lo = mid + 1;
    else hi = mid;
  }
  const after = points[lo];
  const before = lo > 0 ? points[lo - 1] : after;
  if (after[0] < t) return t - after[0] <= NEAR_S ? [after[1], after[2]] : null;
  if (after === before || after[0] - before[0] > 2 * NEAR_S) {
    const nearest = Math.abs(after[0] - t) < Math.abs(before[0] - t) ? after : before;
    return Math.abs(nearest[0] - t) <= NEAR_S ? [nearest[1], nearest[2]] : null;
  }
  const f = (t - before[0]) / (after[0] - before[0] || 1);
  return [before[1] + (after[1] - before[1]) * f, before[2] + (after[2] - before[2]) * f];
}

export class Minimap {
  readonly root: HTMLElement;
  readonly canvas: HTMLCanvasElement;
  private readonly caption: HTMLElement;
  private readonly windows = new Map<number, Promise<Window | null>>();
  private last = -1;
  private pending = false;
  private wanted = 0;

  constructor(
    private readonly base: string,
    private readonly colours: Record<number, string> = TEAM_COLOURS,
    names: Record<number, string> = { 1: "Home", 0: "Away" },
  ) {
    this.canvas = h("canvas", { class: "minimap-canvas", role: "img", "aria-label": "Minimap" });
    this.caption = h("p", { class: "muted small", "aria-live": "off" });
    this.root = h(
      "figure",
      { class: "minimap" },
      this.canvas,
      h(
        "figcaption",
        null,
        h("span", { class: "legend" }, h("span", { class: "swatch", dataset: { team: "1" }, style: { background: colours[1] } }), names[1]),
        h("span", { class: "legend" }, h("span", { class: "swatch", dataset: { team: "0" }, style: { background: colours[0] } }), names[0]),
        h("span", { class: "legend" }, h("span", { class: "swatch ball" }), "Ball"),
        this.caption,
      ),
    );
    requestAnimationFrame(() => void this.show(0));
  }

  /** Draw the pitch at ``time`` (seconds of the match); calls made while drawing coalesce. */
  async show(time: number): Promise<void> {
    this.wanted = time;
    if (this.pending) return;
    this.pending = true;
    try {
      while (Math.abs(this.wanted - this.last) > 0.02 || this.last < 0) {
        const t = this.wanted;
        await this.draw(t);
        this.last = t;
      }
    } finally {
      this.pending = false;
    }
  }

  private window(start: number): Promise<Window | null> {
    let found = this.windows.get(start);
    if (!found) {
      const range = `start_s=${start}&end_s=${start + WINDOW_S}`;
      found = Promise.all([
        api<Tracks>(`${this.base}/analytics/tracks?${range}`),
        api<Ball>(`${this.base}/analytics/ball?${range}`).catch(() => null),
      ])
        .then(([tracks, ball]) => ({ tracks, ball }))
        .catch(() => {
          this.windows.delete(start);
          return null;
        });
      this.windows.set(start, found);
    }
    return found;
  }

  private async draw(t: number): Promise<void> {
    const start = Math.floor(t / WINDOW_S) * WINDOW_S;
    const data = await this.window(start);
    if (t - start > WINDOW_S - 5) void this.window(start + WINDOW_S); // read ahead
    const view = prepare(this.canvas);
    drawPitch(view);
    let players = 0;
    for (const track of data?.tracks.tracks ?? []) {
      const position = positionAt(track.points as Point[], t);
      if (!position) continue;
      players += 1;
      drawDot(view, position[0], position[1], 1.1, this.colours[track.team] ?? this.colours[-1]);
    }
    const ball = data?.ball ? positionAt(data.ball.points as Point[], t) : null;
    if (ball) drawDot(view, ball[0], ball[1], 0.7, "#ffffff");
    this.canvas.dataset.time = t.toFixed(2);
    this.canvas.dataset.players = String(players);
    const text = data
      ? `${clock(t)}: ${players} player${players === 1 ? "" : "s"} on the pitch${ball ? ", ball shown" : ""}.`
      : "Positions are not available.";
    this.canvas.setAttribute("aria-label", `Minimap at ${text}`);
    this.caption.textContent = text;
  }
}
