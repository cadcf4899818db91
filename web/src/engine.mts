// Stream engines behind one small interface: hls.js (MSE), the browser's own HLS, dash.js.
// The light build: no subtitles, alternate audio or DRM, which our streams do not use.
import Hls from "hls.js/light";

export type Level = { index: number; label: string; height: number };
export type Format = "auto" | "hls" | "dash";

export interface Engine {
  readonly name: string;
  /** The renditions, top first; empty where the browser chooses alone (native HLS). */
  levels(): Level[];
  /** -1: automatic. */
  setLevel(index: number): void;
  destroy(): void;
}

function label(height: number, width: number): string {
  return height ? `${height}p` : `${width}w`;
}

function sorted(levels: Level[]): Level[] {
  return levels.sort((a, b) => b.height - a.height);
}

export function hlsSupported(): boolean {
  return Hls.isSupported();
}

/** Attach ``video`` to the stream; resolves once its renditions are known. */
export async function attach(
  video: HTMLVideoElement,
  source: { hls: string; dash: string | null },
  format: Format,
  onLevel: (level: Level | null) => void,
): Promise<Engine> {
  const useDash = source.dash !== null && (format === "dash" || (format === "auto" && !Hls.isSupported() && !nativeHls(video)));
  if (useDash) return attachDash(video, source.dash!, onLevel);
  if (Hls.isSupported()) return attachHls(video, source.hls, onLevel);
  if (nativeHls(video)) {
    video.src = source.hls;
    return { name: "native HLS", levels: () => [], setLevel: () => undefined, destroy: () => video.removeAttribute("src") };
  }
  throw new Error("This browser cannot play the stream (no Media Source Extensions or HLS support).");
}

function nativeHls(video: HTMLVideoElement): boolean {
  return video.canPlayType("application/vnd.apple.mpegurl") !== "";
}

function attachHls(video: HTMLVideoElement, url: string, onLevel: (level: Level | null) => void): Promise<Engine> {
  const hls = new Hls({ capLevelToPlayerSize: false, startLevel: -1, backBufferLength: 30 });
  let levels: Level[] = [];
  const engine: Engine = {
    name: "HLS",
    levels: () => levels,
    setLevel: (index) => {
      // currentLevel switches at once (the buffer is flushed); -1 hands control back to ABR.
      hls.currentLevel = index;
    },
    destroy: () => hls.destroy(),
  };
  return new Promise((resolve, reject) => {
    hls.on(Hls.Events.MANIFEST_PARSED, (_event, data) => {
      levels = sorted(data.levels.map((level, index) => ({ index, height: level.height, label: label(level.height, level.width) })));
      resolve(engine);
    });
    hls.on(Hls.Events.LEVEL_SWITCHED, (_event, data) => {
      const level = hls.levels[data.level];
      onLevel(level ? { index: data.level, height: level.height, label: label(level.height, level.width) } : null);
    });
    hls.on(Hls.Events.ERROR, (_event, data) => {
      if (!data.fatal) return;
      if (data.type === Hls.ErrorTypes.MEDIA_ERROR) hls.recoverMediaError();
      else reject(new Error(`The stream could not be loaded (${data.details}).`));
    });
    hls.loadSource(url);
    hls.attachMedia(video);
  });
}

async function attachDash(video: HTMLVideoElement, url: string, onLevel: (level: Level | null) => void): Promise<Engine> {
  // dash.js is large and rarely needed: a chunk of its own, loaded on first use.
  const dashjs = await import("dashjs");
  const player = dashjs.MediaPlayer().create();
  player.initialize(video, url, false);
  const representations = () => player.getRepresentationsByType("video");
  await new Promise<void>((resolve) => player.on(dashjs.MediaPlayer.events.STREAM_INITIALIZED, () => resolve()));
  player.on(dashjs.MediaPlayer.events.QUALITY_CHANGE_RENDERED, () => {
    const current = player.getCurrentRepresentationForType("video");
    onLevel(current ? { index: current.absoluteIndex, height: current.height, label: label(current.height, current.width) } : null);
  });
  return {
    name: "DASH",
    levels: () => sorted(representations().map((r) => ({ index: r.absoluteIndex, height: r.height, label: label(r.height, r.width) }))),
    setLevel: (index) => {
      const auto = index < 0;
      player.updateSettings({ streaming: { abr: { autoSwitchBitrate: { video: auto } } } });
      if (!auto) player.setRepresentationForTypeByIndex("video", index, true);
    },
    destroy: () => player.destroy(),
  };
}
