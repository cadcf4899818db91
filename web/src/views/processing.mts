// A match's processing: progress per stage (polled live), and the operators' controls:
// reprocess from a stage, render a new camera mode, cancel, the run in the Temporal UI.
import { api, type Processing } from "../api.mts";
import { announce, h, replace, uid } from "../dom.mts";
import type { Context } from "../nav.mts";

export const STAGES = ["ingest", "stitch", "detect", "track", "vcam", "analyze", "encode", "index"];
export const CAMERA_MODES = ["director", "zones", "centered"];
const STAGE_LABELS: Record<string, string> = {
  ingest: "Ingest",
  stitch: "Stitch",
  detect: "Detect",
  track: "Track",
  vcam: "Virtual camera",
  analyze: "Analyse",
  encode: "Encode",
  index: "Publish",
};
const STATE_LABELS: Record<string, string> = {
  not_started: "Not started",
  running: "Running",
  completed: "Completed",
  failed: "Failed",
  cancelled: "Cancelled",
  terminated: "Terminated",
  timed_out: "Timed out",
};

export class ProcessingPanel {
  readonly root: HTMLElement;
  private readonly body: HTMLElement;
  private readonly feedback: HTMLElement;
  private readonly controls: HTMLElement | null;
  private readonly cancelButton: HTMLButtonElement;
  private readonly temporalLink: HTMLAnchorElement;
  private timer: number | undefined;
  private stopped = false;
  private lastState = "";

  constructor(
    private readonly base: string,
    ctx: Context,
    private readonly onFinished: (state: string) => void,
  ) {
    this.body = h("div", { class: "stages" }, h("p", { class: "muted" }, "Asking the processing service…"));
    this.feedback = h("p", { class: "feedback", role: "status" });
    this.cancelButton = h("button", { type: "button", class: "button danger", hidden: true }, "Cancel processing");
    this.cancelButton.addEventListener("click", () => void this.cancel());
    this.temporalLink = h("a", { class: "external", target: "_blank", rel: "noopener noreferrer", hidden: true }, "Open the run in the Temporal UI");
    this.controls = ctx.can("reprocess") ? this.operatorControls() : null;
    this.root = h(
      "section",
      { class: "panel processing", "aria-labelledby": "processing-title", dataset: { state: "" } },
      h("h2", { id: "processing-title" }, "Processing"),
      this.body,
      this.controls,
      this.feedback,
    );
    void this.poll();
  }

  stop(): void {
    this.stopped = true;
    window.clearTimeout(this.timer);
  }

  private operatorControls(): HTMLElement {
    const stageId = uid("stage");
    const modeId = uid("mode");
    const stage = h("select", { id: stageId }, STAGES.map((s) => h("option", { value: s }, STAGE_LABELS[s])));
    const mode = h("select", { id: modeId }, CAMERA_MODES.map((m) => h("option", { value: m }, m[0].toUpperCase() + m.slice(1))));
    return h(
      "div",
      { class: "operator" },
      h(
        "form",
        {
          class: "inline-form",
          "aria-label": "Reprocess",
          onsubmit: (e: Event) => {
            e.preventDefault();
            void this.act(`${this.base}/processing/reprocess`, { from_stage: stage.value }, (answer) =>
              `Reprocessing from ${STAGE_LABELS[stage.value]} (${answer.restarted_from ?? stage.value}).`,
            );
          },
        },
        h("div", { class: "field" }, h("label", { for: stageId }, "Reprocess from"), stage),
        h("button", { type: "submit", class: "button" }, "Reprocess"),
      ),
      h(
        "form",
        {
          class: "inline-form",
          "aria-label": "Render a camera mode",
          onsubmit: (e: Event) => {
            e.preventDefault();
            void this.act(`${this.base}/views`, { mode: mode.value }, (answer) => `Rendering the ${answer.mode} camera as view “${answer.view}”.`);
          },
        },
        h("div", { class: "field" }, h("label", { for: modeId }, "Camera mode"), mode),
        h("button", { type: "submit", class: "button" }, "Render view"),
      ),
      h("div", { class: "operator-links" }, this.cancelButton, this.temporalLink),
    );
  }

  private async act(path: string, body: unknown, success: (answer: any) => string): Promise<void> {
    this.feedback.textContent = "Sending…";
    try {
      const answer = await api(path, { method: "POST", body });
      this.feedback.textContent = success(answer);
      announce(this.feedback.textContent);
      window.clearTimeout(this.timer);
      void this.poll();
    } catch (error) {
      this.feedback.textContent = (error as Error).message;
    }
  }

  private async cancel(): Promise<void> {
    if (!window.confirm("Cancel this match's processing? The outputs of the run are removed.")) return;
    await this.act(`${this.base}/processing/cancel`, undefined, () => "Cancellation requested.");
  }

  private async poll(): Promise<void> {
    if (this.stopped) return;
    let delay = 2000;
    try {
      const status = await api<Processing>(`${this.base}/processing`);
      if (this.stopped) return;
      this.show(status);
      const running = status.status === "running" || (status.status === "not_started" && ["processing", "uploading"].includes(status.match_status ?? ""));
      if (!running) delay = 15000;
      if (this.lastState === "running" && status.status !== "running") this.onFinished(status.status);
      this.lastState = status.status;
    } catch (error) {
      this.feedback.textContent = (error as Error).message;
      delay = 5000;
    }
    if (!this.stopped) this.timer = window.setTimeout(() => void this.poll(), delay);
  }

  private show(status: Processing): void {
    this.root.dataset.state = status.status;
    const progress = status.progress;
    const state = STATE_LABELS[status.status] ?? status.status;
    const headline = progress && status.status === "running" ? `${state}: ${STAGE_LABELS[progress.stage] ?? progress.stage}` : state;
    const rows = STAGES.filter((name) => progress?.stages[name]).map((name) => {
      const entry = progress!.stages[name];
      const frames = entry.frames_total > 0;
      const value = frames ? entry.frames_done : entry.done;
      const max = frames ? entry.frames_total : entry.total;
      const text = frames ? `${entry.frames_done} of ${entry.frames_total} frames` : `${entry.done} of ${entry.total} chunks`;
      const id = uid("stage-progress");
      return h(
        "li",
        { class: `stage${entry.running ? " running" : ""}${entry.done >= entry.total && entry.total > 0 ? " done" : ""}`, dataset: { stage: name, done: String(value), total: String(max) } },
        h("span", { class: "stage-name", id }, STAGE_LABELS[name]),
        h("progress", { max: String(Math.max(1, max)), value: String(value), "aria-labelledby": id, "aria-valuetext": text }),
        h("span", { class: "stage-text" }, entry.seconds ? `${text}, ${entry.seconds.toFixed(1)} s` : text),
      );
    });
    replace(
      this.body,
      h("p", { class: "processing-state", dataset: { state: status.status } }, headline),
      status.failure ? h("p", { class: "form-error" }, status.failure) : null,
      status.warnings.map((w) => h("p", { class: "warning" }, w)),
      rows.length ? h("ol", { class: "stage-list", "aria-label": "Stages" }, rows) : null,
    );
    this.cancelButton.hidden = status.status !== "running";
    if (status.ui_url) {
      this.temporalLink.href = status.ui_url;
      this.temporalLink.hidden = false;
    }
  }
}
