// Pan and zoom a video inside its frame with a CSS transform: drag, wheel, pinch, keys.

const MIN_SCALE = 1;
const MAX_SCALE = 8;

export class PanZoom {
  private scale = 1;
  private x = 0;
  private y = 0;
  private pointers = new Map<number, { x: number; y: number }>();
  private pinch: { distance: number; scale: number } | null = null;
  private enabled = false;
  private readonly abort = new AbortController();

  constructor(
    private readonly frame: HTMLElement,
    private readonly video: HTMLVideoElement,
  ) {
    const options = { signal: this.abort.signal };
    frame.addEventListener("pointerdown", (e) => this.down(e), options);
    frame.addEventListener("pointermove", (e) => this.move(e), options);
    for (const type of ["pointerup", "pointercancel", "pointerleave"]) {
      frame.addEventListener(type, (e) => this.up(e as PointerEvent), options);
    }
    frame.addEventListener("wheel", (e) => this.wheel(e), { ...options, passive: false });
    frame.addEventListener("keydown", (e) => this.key(e), options);
    window.addEventListener("resize", () => this.apply(), options);
    video.addEventListener("loadedmetadata", () => this.enabled && this.fill(), options);
  }

  /** Turn pan and zoom on (the panorama) or off (the virtual camera, which frames itself). */
  setEnabled(enabled: boolean): void {
    this.enabled = enabled;
    this.frame.classList.toggle("pannable", enabled);
    if (enabled) this.fill();
    else this.set(1, 0, 0);
  }

  /** Zoom so the panorama fills the frame's height, centred: ready to pan sideways. */
  fill(): void {
    const { width, height, content } = this.geometry();
    const scale = content.h > 0 ? Math.min(MAX_SCALE, Math.max(MIN_SCALE, height / content.h)) : 1;
    this.set(scale, (width - scale * width) / 2, (height - scale * height) / 2);
  }

  zoomBy(factor: number, cx?: number, cy?: number): void {
    const { width, height } = this.geometry();
    const px = cx ?? width / 2;
    const py = cy ?? height / 2;
    const scale = Math.min(MAX_SCALE, Math.max(MIN_SCALE, this.scale * factor));
    const ratio = scale / this.scale;
    this.set(scale, px - (px - this.x) * ratio, py - (py - this.y) * ratio);
  }

  panBy(dx: number, dy: number): void {
    this.set(this.scale, this.x + dx, this.y + dy);
  }

  destroy(): void {
    this.abort.abort();
  }

  // The video's picture inside its element (object-fit: contain), unscaled.
  private geometry() {
    const width = this.frame.clientWidth;
    const height = this.frame.clientHeight;
    const vw = this.video.videoWidth || 16;
    const vh = this.video.videoHeight || 9;
    const fit = Math.min(width / vw, height / vh);
    const w = vw * fit;
    const h = vh * fit;
    return { width, height, content: { x: (width - w) / 2, y: (height - h) / 2, w, h } };
  }

  private set(scale: number, x: number, y: number): void {
    const { width, height, content } = this.geometry();
    // Keep the picture covering the frame where it is larger than it, centred where smaller.
    const clamp = (offset: number, frameSize: number, start: number, size: number) => {
      const scaled = scale * size;
      if (scaled <= frameSize) return (frameSize - scaled) / 2 - scale * start;
      return Math.min(-scale * start, Math.max(frameSize - scale * (start + size), offset));
    };
    this.scale = scale;
    this.x = clamp(x, width, content.x, content.w);
    this.y = clamp(y, height, content.y, content.h);
    this.apply();
  }

  private apply(): void {
    this.video.style.transform = `translate(${this.x}px, ${this.y}px) scale(${this.scale})`;
    this.frame.dataset.scale = this.scale.toFixed(3);
    this.frame.dataset.x = this.x.toFixed(1);
    this.frame.dataset.y = this.y.toFixed(1);
  }

  private local(event: { clientX: number; clientY: number }) {
    const box = this.frame.getBoundingClientRect();
    return { x: event.clientX - box.left, y: event.clientY - box.top };
  }

  private down(event: PointerEvent): void {
    if (!this.enabled || (event.pointerType === "mouse" && event.button !== 0)) return;
    this.frame.setPointerCapture?.(event.pointerId);
    this.pointers.set(event.pointerId, this.local(event));
    this.frame.classList.add("dragging");
    if (this.pointers.size === 2) this.pinch = { distance: this.spread(), scale: this.scale };
  }

  private move(event: PointerEvent): void {
    const last = this.pointers.get(event.pointerId);
    if (!this.enabled || !last) return;
    event.preventDefault();
    const now = this.local(event);
    if (this.pointers.size === 1) this.panBy(now.x - last.x, now.y - last.y);
    this.pointers.set(event.pointerId, now);
    if (this.pointers.size === 2 && this.pinch) {
      const [a, b] = [...this.pointers.values()];
      this.zoomBy((this.pinch.scale * this.spread()) / this.pinch.distance / this.scale, (a.x + b.x) / 2, (a.y + b.y) / 2);
    }
  }

  private up(event: PointerEvent): void {
    this.pointers.delete(event.pointerId);
    if (this.pointers.size < 2) this.pinch = null;
    if (this.pointers.size === 0) this.frame.classList.remove("dragging");
  }

  private spread(): number {
    const [a, b] = [...this.pointers.values()];
    return Math.hypot(a.x - b.x, a.y - b.y) || 1;
  }

  private wheel(event: WheelEvent): void {
    if (!this.enabled) return;
    event.preventDefault();
    const at = this.local(event);
    this.zoomBy(Math.exp(-event.deltaY * 0.002), at.x, at.y);
  }

  private key(event: KeyboardEvent): void {
    if (!this.enabled) return;
    const step = event.shiftKey ? 120 : 40;
    const actions: Record<string, () => void> = {
      ArrowLeft: () => this.panBy(step, 0),
      ArrowRight: () => this.panBy(-step, 0),
      ArrowUp: () => this.panBy(0, step),
      ArrowDown: () => this.panBy(0, -step),
      "+": () => this.zoomBy(1.25),
      "=": () => this.zoomBy(1.25),
      "-": () => this.zoomBy(0.8),
      "0": () => this.fill(),
    };
    const action = actions[event.key];
    if (action) {
      event.preventDefault();
      action();
    }
  }
}
