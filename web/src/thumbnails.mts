// The scrubbing thumbnails: a WebVTT index whose cues name sprite tiles (`sprite.jpg#xywh=`).

export type Thumbnail = { start: number; end: number; url: string; x: number; y: number; w: number; h: number };

function seconds(stamp: string): number {
  const parts = stamp.trim().split(":").map(Number);
  return parts.reduce((total, part) => total * 60 + part, 0);
}

export function parseThumbnails(text: string): Thumbnail[] {
  const cues: Thumbnail[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const timing = lines[i].match(/^\s*([\d:.]+)\s+-->\s+([\d:.]+)/);
    if (!timing || i + 1 >= lines.length) continue;
    const payload = lines[i + 1].trim();
    const [url, fragment = ""] = payload.split("#");
    const box = fragment.match(/xywh=(\d+),(\d+),(\d+),(\d+)/);
    if (!url || !box) continue;
    const [x, y, w, h] = box.slice(1).map(Number);
    cues.push({ start: seconds(timing[1]), end: seconds(timing[2]), url, x, y, w, h });
  }
  return cues;
}

export async function loadThumbnails(url: string | null): Promise<Thumbnail[]> {
  if (!url) return [];
  try {
    const response = await fetch(url);
    return response.ok ? parseThumbnails(await response.text()) : [];
  } catch {
    return [];
  }
}

export function thumbnailAt(cues: Thumbnail[], time: number): Thumbnail | null {
  let found: Thumbnail | null = null;
  for (const cue of cues) {
    if (cue.start <= time) found = cue;
    if (cue.start <= time && time < cue.end) return cue;
  }
  return found;
}
