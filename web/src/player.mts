// The match player: virtual camera or panorama, rendition choice, a scrubbing bar with
// thumbnails, and pan and zoom on the panorama.
import type { Playback } from "./api.mts";
import { attach, type Engine, type Format, type Level } from "./engine.mts";
import { announce, clock, h, replace, spokenTime, uid } from "./dom.mts";
import { icon } from "./icons.mts";
import { PanZoom } from "./panzoom.mts";
import { loadThumbnails, type Thumbnail, thumbnailAt } from "./thumbnails.mts";

export type Source = "camera" | "panorama";

export class Player {
  readonly root: HTMLElement;
  readonly video: HTMLVideoElement;
  private readonly frame: HTMLElement;
  private readonly panzoom: PanZoom;
  private readonly play: HTMLButtonElement;
  private readonly seek: HTMLInputElement;
  private readonly time: HTMLElement;
  private readonly quality: HTMLSelectElement;
  private readonly format: HTMLSelectElement;
  private readonly preview: HTMLElement;
  private readonly previewImage: HTMLElement;
  private readonly previewTime: HTMLElement;
  private readonly sourceButtons: Record<Source, HTMLButtonElement>;
  private readonly panHelp: HTMLElement;
  private readonly status: HTMLElement;
  private engine: Engine | null = null;
  private thumbnails: Thumbnail[] = [];
  private source: Source = "camera";
  private seeking = false;
  private frameRequest = 0;
  private readonly listeners: Array<(time: number) => void> = [];

  constructor(private playback: Playback) {
    this.video = h("video", {
      class: "video",
      playsInline: true,
      preload: "auto",
      poster: playback.poster_url ?? undefined,
      "aria-label": "Match video",
    });
    const helpId = uid("pan-help");
    this.panHelp = h(
      "p",
      { id: helpId, class: "pan-help", hidden: true },
      "Drag, pinch or scroll to pan and zoom; with the keyboard: arrow keys pan, + and − zoom, 0 resets.",
    );
    this.frame = h("div", { class: "frame", tabindex: "-1", role: "group", "aria-label": "Video", "aria-describedby": helpId }, this.video);
    this.panzoom = new PanZoom(this.frame, this.video);
    this.status = h("p", { class: "player-status", role: "status" });

    this.play = h("button", { type: "button", class: "icon-button play", "aria-label": "Play" }, icon("play"));
    const seekId = uid("seek");
    this.seek = h("input", {
      id: seekId,
      class: "seek",
      type: "range",
      min: "0",
      max: "0",
      step: "0.04",
      value: "0",
      "aria-label": "Seek",
    });
    this.time = h("span", { class: "time", "aria-hidden": "true" }, "0:00 / 0:00");
    this.previewImage = h("div", { class: "preview-image" });
    this.previewTime = h("span", { class: "preview-time" });
    this.preview = h("div", { class: "preview", hidden: true, "aria-hidden": "true" }, this.previewImage, this.previewTime);
    const qualityId = uid("quality");
    this.quality = h("select", { id: qualityId }, h("option", { value: "-1" }, "Auto"));
    const formatId = uid("format");
    this.format = h(
      "select",
      { id: formatId },
      h("option", { value: "auto" }, "Auto"),
      h("option", { value: "hls" }, "HLS"),
      playback.dash_url ? h("option", { value: "dash" }, "DASH") : null,
    );
    const mute = h("button", { type: "button", class: "icon-button", "aria-label": "Mute", "aria-pressed": "false" }, icon("sound"));
    mute.addEventListener("click", () => {
      this.video.muted = !this.video.muted;
      mute.setAttribute("aria-pressed", String(this.video.muted));
      replace(mute, icon(this.video.muted ? "muted" : "sound"));
    });
    const fullscreen = h(
      "button",
      { type: "button", class: "icon-button", "aria-label": "Full screen", onclick: () => this.toggleFullscreen() },
      icon("fullscreen"),
    );
    this.sourceButtons = {
      camera: h("button", { type: "button", class: "segment", "aria-pressed": "true", dataset: { source: "camera" } }, "Virtual camera"),
      panorama: h("button", { type: "button", class: "segment", "aria-pressed": "false", dataset: { source: "panorama" } }, "Panorama"),
    };
    this.sourceButtons.panorama.disabled = !playback.panorama_master_url;
    const zoomButtons = h(
      "div",
      { class: "zoom-buttons", hidden: true },
      h("button", { type: "button", class: "icon-button", "aria-label": "Zoom in", onclick: () => this.panzoom.zoomBy(1.25) }, icon("plus")),
      h("button", { type: "button", class: "icon-button", "aria-label": "Zoom out", onclick: () => this.panzoom.zoomBy(0.8) }, icon("minus")),
      h("button", { type: "button", class: "icon-button", "aria-label": "Reset pan and zoom", onclick: () => this.panzoom.fill() }, icon("reset")),
    );

    this.root = h(
      "section",
      { class: "player", "aria-label": "Player", dataset: { source: "camera" } },
      h(
        "div",
        { class: "source-switch", role: "group", "aria-label": "Picture" },
        this.sourceButtons.camera,
        this.sourceButtons.panorama,
      ),
      h("div", { class: "frame-wrap" }, this.frame, zoomButtons),
      h(
        "div",
        { class: "controls" },
        this.play,
        h("div", { class: "seek-wrap" }, h("label", { for: seekId, class: "visually-hidden" }, "Seek"), this.seek, this.preview),
        this.time,
        h("label", { class: "inline-field", for: qualityId }, h("span", null, "Quality"), this.quality),
        h("label", { class: "inline-field", for: formatId }, h("span", null, "Stream"), this.format),
        mute,
        fullscreen,
      ),
      this.panHelp,
      this.status,
    );

    this.play.addEventListener("click", () => this.togglePlay());
    this.video.addEventListener("click", () => this.source === "camera" && this.togglePlay());
    this.video.addEventListener("play", () => this.updatePlaying());
    this.video.addEventListener("pause", () => this.updatePlaying());
    this.video.addEventListener("ended", () => this.updatePlaying());
    this.video.addEventListener("durationchange", () => this.updateTime());
    this.video.addEventListener("timeupdate", () => this.updateTime());
    this.video.addEventListener("seeked", () => this.emit());
    this.seek.addEventListener("input", () => {
      this.seeking = true;
      this.video.currentTime = Number(this.seek.value);
      this.showPreview(Number(this.seek.value));
      this.updateTime();
    });
    this.seek.addEventListener("change", () => {
      this.seeking = false;
      this.hidePreview();
    });
    this.seek.addEventListener("blur", () => this.hidePreview());
    this.seek.addEventListener("pointermove", (event) => {
      const box = this.seek.getBoundingClientRect();
      const fraction = Math.min(1, Math.max(0, (event.clientX - box.left) / box.width));
      this.showPreview(fraction * (this.video.duration || 0), fraction);
    });
    this.seek.addEventListener("pointerleave", () => !this.seeking && this.hidePreview());
    this.quality.addEventListener("change", () => {
      this.engine?.setLevel(Number(this.quality.value));
      announce(`Quality: ${this.quality.selectedOptions[0].textContent}`);
    });
    this.format.addEventListener("change", () => void this.load());
    for (const [source, button] of Object.entries(this.sourceButtons) as [Source, HTMLButtonElement][]) {
      button.addEventListener("click", () => {
        if (source === this.source) return;
        this.source = source;
        for (const [other, b] of Object.entries(this.sourceButtons)) b.setAttribute("aria-pressed", String(other === source));
        this.root.dataset.source = source;
        zoomButtons.hidden = source !== "panorama";
        this.panHelp.hidden = source !== "panorama";
        this.frame.tabIndex = source === "panorama" ? 0 : -1;
        this.frame.setAttribute("aria-label", source === "panorama" ? "Panorama, pannable" : "Video");
        void this.load().then(() => announce(source === "panorama" ? "Panorama" : "Virtual camera"));
      });
    }
    document.addEventListener("keydown", this.shortcuts);
    loadThumbnails(playback.thumbnails_url).then((cues) => (this.thumbnails = cues));
  }

  /** Call ``listener`` with the playback time as it moves (each frame while playing). */
  onTime(listener: (time: number) => void): void {
    this.listeners.push(listener);
  }

  /** Load (or reload after a switch) the current source, keeping the time and play state. */
  async load(): Promise<void> {
    const resume = { time: this.video.currentTime || 0, playing: !this.video.paused && !this.video.ended };
    this.engine?.destroy();
    this.engine = null;
    this.quality.replaceChildren(h("option", { value: "-1" }, "Auto"));
    const panorama = this.source === "panorama";
    const source = panorama
      ? { hls: this.playback.panorama_master_url!, dash: this.playback.panorama_dash_url }
      : { hls: this.playback.master_url, dash: this.playback.dash_url };
    this.status.textContent = "";
    this.root.dataset.level = "";
    try {
      this.engine = await attach(this.video, source, this.format.value as Format, (level) => this.levelShown(level));
    } catch (error) {
      this.status.textContent = (error as Error).message;
      return;
    }
    this.root.dataset.engine = this.engine.name;
    for (const level of this.engine.levels()) this.quality.appendChild(h("option", { value: String(level.index) }, level.label));
    this.quality.disabled = this.engine.levels().length < 2;
    this.panzoom.setEnabled(panorama);
    if (resume.time > 0) {
      await new Promise<void>((resolve) => {
        if (this.video.readyState >= 1) resolve();
        else this.video.addEventListener("loadedmetadata", () => resolve(), { once: true });
      });
      this.video.currentTime = resume.time;
    }
    if (resume.playing) await this.video.play().catch(() => undefined);
  }

  destroy(): void {
    cancelAnimationFrame(this.frameRequest);
    document.removeEventListener("keydown", this.shortcuts);
    this.engine?.destroy();
    this.panzoom.destroy();
  }

  private levelShown(level: Level | null): void {
    this.root.dataset.level = level?.label ?? "";
    this.status.textContent = level ? `Playing ${level.label}` : "";
  }

  private togglePlay(): void {
    if (this.video.paused || this.video.ended) void this.video.play().catch((e) => (this.status.textContent = String(e.message ?? e)));
    else this.video.pause();
  }

  private updatePlaying(): void {
    const playing = !this.video.paused && !this.video.ended;
    replace(this.play, icon(playing ? "pause" : "play"));
    this.play.setAttribute("aria-label", playing ? "Pause" : "Play");
    cancelAnimationFrame(this.frameRequest);
    if (playing) {
      const tick = () => {
        this.emit();
        this.frameRequest = requestAnimationFrame(tick);
      };
      tick();
    } else this.emit();
  }

  private updateTime(): void {
    const duration = Number.isFinite(this.video.duration) ? this.video.duration : 0;
    const now = this.video.currentTime;
    this.seek.max = String(duration);
    if (!this.seeking) this.seek.value = String(now);
    this.seek.setAttribute("aria-valuetext", `${spokenTime(now)} of ${spokenTime(duration)}`);
    this.time.textContent = `${clock(now)} / ${clock(duration)}`;
    this.emit();
  }

  private emit(): void {
    for (const listener of this.listeners) listener(this.video.currentTime);
  }

  private showPreview(time: number, fraction?: number): void {
    const cue = thumbnailAt(this.thumbnails, time);
    const duration = this.video.duration || 0;
    const at = fraction ?? (duration ? time / duration : 0);
    this.previewTime.textContent = clock(time);
    if (cue) {
      Object.assign(this.previewImage.style, {
        width: `${cue.w}px`,
        height: `${cue.h}px`,
        backgroundImage: `url("${cue.url}")`,
        backgroundPosition: `-${cue.x}px -${cue.y}px`,
      });
      this.previewImage.hidden = false;
    } else this.previewImage.hidden = true;
    this.preview.style.left = `${(at * 100).toFixed(2)}%`;
    this.preview.hidden = false;
  }

  private hidePreview(): void {
    this.preview.hidden = true;
  }

  private toggleFullscreen(): void {
    if (document.fullscreenElement) void document.exitFullscreen();
    else void this.root.requestFullscreen?.().catch(() => undefined);
  }

  // k or space: play/pause; j and l: 5 s back and forward (when focus is not in a field).
  private readonly shortcuts = (event: KeyboardEvent): void => {
    const target = event.target as HTMLElement;
    if (target.closest("input, select, textarea, button, [role=group][tabindex='0']") || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "k" || event.key === " ") {
      event.preventDefault();
      this.togglePlay();
    } else if (event.key === "j") this.video.currentTime = Math.max(0, this.video.currentTime - 5);
    else if (event.key === "l") this.video.currentTime = Math.min(this.video.duration || 0, this.video.currentTime + 5);
  };
}
