// One match: the player (virtual camera or panorama), the minimap, heatmaps, figures, and
// for operators the processing and its controls.
import { api, ApiError, type Heatmap, type Match, type Playback, type PlayerStats, type TeamStats, type Tracks, type ViewItem } from "../api.mts";
import { possessionChart } from "../charts.mts";
import { announce, h, number, replace, scrollRegion, uid } from "../dom.mts";
import { Minimap } from "../minimap.mts";
import { type Context, type Dispose, link } from "../nav.mts";
import { drawHeat, drawPitch, PITCH, prepare, TEAM_COLOURS } from "../pitch.mts";
import { Player } from "../player.mts";
import { statusBadge, teamsLine } from "./matches.mts";
import { ProcessingPanel } from "./processing.mts";

type Teams = { names: Record<number, string>; colours: Record<number, string> };

function teamsOf(match: Match): Teams {
  return {
    names: { 1: match.home_team?.name ?? "Home", 0: match.away_team?.name ?? "Away", [-1]: "Unassigned" },
    colours: { ...TEAM_COLOURS, 1: match.home_kit_colour ?? TEAM_COLOURS[1], 0: match.away_kit_colour ?? TEAM_COLOURS[0] },
  };
}

const kmh = (metresPerSecond: number) => number(metresPerSecond * 3.6, 1);

export function renderMatch(main: HTMLElement, ctx: Context, matchId: string, setTitle: (t: string) => void): Dispose {
  const base = `/orgs/${ctx.org.id}/matches/${encodeURIComponent(matchId)}`;
  const cleanups: Array<() => void> = [];
  let disposed = false;
  const page = h("article", { class: "page match-page" }, h("p", { class: "muted" }, "Loading the match…"));
  replace(main, page);

  async function render(): Promise<void> {
    for (const cleanup of cleanups.splice(0)) cleanup();
    let match: Match;
    try {
      match = await api<Match>(base);
    } catch (error) {
      if (error instanceof ApiError && (error.status === 404 || error.status === 422)) {
        setTitle("Not found");
        replace(page, h("h1", null, "Match not found"), h("p", null, "There is no such match, or you have no access to it."), link(`/orgs/${ctx.org.id}`, "Back to the matches"));
        return;
      }
      throw error;
    }
    if (disposed) return;
    setTitle(match.title);
    const teams = teamsOf(match);
    const meta = [teamsLine(match), match.venue, match.kickoff_at ? new Date(match.kickoff_at).toLocaleString() : null].filter(Boolean).join(" · ");
    const watch = h("div", { class: "watch" });
    const side = h("div", { class: "side" });
    const analytics = h("div", { class: "analytics" });
    replace(
      page,
      h(
        "header",
        { class: "match-head" },
        link(`/orgs/${ctx.org.id}`, "← All matches"),
        h("div", { class: "title-row" }, h("h1", null, match.title), statusBadge(match.status)),
        meta ? h("p", { class: "muted" }, meta) : null,
      ),
      h("div", { class: "match-layout" }, watch, side),
      analytics,
    );

    const busy = match.status === "processing" || match.status === "uploading";
    if (busy || ctx.can("reprocess")) {
      const panel = new ProcessingPanel(base, ctx, (state) => {
        announce(`Processing ${state}`);
        void render();
      });
      cleanups.push(() => panel.stop());
      side.appendChild(panel.root);
    }

    const playback = await playbackOf(base, null);
    if (disposed) return;
    if (!playback) {
      replace(
        watch,
        h("div", { class: "panel empty-player" }, h("p", null, busy ? "The match is being processed; the stream appears here when it is ready." : "This match has no stream yet.")),
      );
      return;
    }
    mountPlayer(watch, playback);
    if (ctx.can("read_analytics")) {
      const minimap = new Minimap(base, teams.colours, teams.names);
      side.prepend(h("section", { class: "panel", "aria-labelledby": "minimap-title" }, h("h2", { id: "minimap-title" }, "Minimap"), minimap.root));
      playerTime = (t) => void minimap.show(t);
      void renderAnalytics(analytics, base, match, teams);
    }
  }

  let player: Player | null = null;
  let playerTime: ((t: number) => void) | null = null;

  function mountPlayer(watch: HTMLElement, playback: Playback): void {
    player?.destroy();
    player = new Player(playback);
    player.onTime((t) => playerTime?.(t));
    const current = player;
    cleanups.push(() => current.destroy());
    replace(watch, viewPicker(watch), player.root);
    void player.load();
  }

  // The match's own camera, or a re-rendered view of it (rendered by an operator).
  function viewPicker(watch: HTMLElement): HTMLElement | null {
    const id = uid("view");
    const select = h("select", { id }, h("option", { value: "" }, "Match camera"));
    const wrap = h("div", { class: "field view-picker", hidden: true }, h("label", { for: id }, "Camera"), select);
    api<ViewItem[]>(`${base}/views`)
      .then((views) => {
        const done = views.filter((v) => v.status === "completed");
        for (const v of done) select.appendChild(h("option", { value: v.view }, `${v.mode} (${v.view})`));
        wrap.hidden = done.length === 0;
      })
      .catch(() => undefined);
    select.addEventListener("change", async () => {
      const playback = await playbackOf(base, select.value || null);
      if (playback) {
        mountPlayer(watch, playback);
        announce(`Camera: ${select.selectedOptions[0].textContent}`);
      }
    });
    return wrap;
  }

  render().catch((error) => {
    if (!(error instanceof ApiError && error.status === 401)) replace(page, h("p", { role: "alert" }, (error as Error).message));
  });
  return () => {
    disposed = true;
    for (const cleanup of cleanups.splice(0)) cleanup();
  };
}

async function playbackOf(base: string, view: string | null): Promise<Playback | null> {
  try {
    return await api<Playback>(`${base}/playback${view ? `?view=${encodeURIComponent(view)}` : ""}`);
  } catch (error) {
    if (error instanceof ApiError && (error.status === 409 || error.status === 404)) return null;
    throw error;
  }
}

// --- analytics --------------------------------------------------------------------------

async function renderAnalytics(root: HTMLElement, base: string, match: Match, teams: Teams): Promise<void> {
  const heatmaps = h("div", { class: "heatmaps" });
  const playerHeat = h("div", { class: "player-heat" });
  const teamTable = scrollRegion("Team totals", h("p", { class: "muted" }, "Loading…"));
  const possession = h("div", null, h("p", { class: "muted" }, "Loading…"));
  const playerTable = scrollRegion("Per-player statistics", h("p", { class: "muted" }, "Loading…"));
  replace(
    root,
    h("section", { class: "panel", "aria-labelledby": "heat-title" }, h("h2", { id: "heat-title" }, "Heatmaps"), heatmaps, playerHeat),
    h(
      "div",
      { class: "figures" },
      h("section", { class: "panel", "aria-labelledby": "teams-title" }, h("h2", { id: "teams-title" }, "Teams"), teamTable),
      h("section", { class: "panel", "aria-labelledby": "possession-heading" }, h("h2", { id: "possession-heading" }, "Possession"), possession),
    ),
    h("section", { class: "panel", "aria-labelledby": "players-title" }, h("h2", { id: "players-title" }, "Players"), playerTable),
  );

  for (const team of [1, 0]) {
    const figure = heatFigure(`${teams.names[team]}`, `heatmap-team-${team}`);
    heatmaps.appendChild(figure.root);
    api<Heatmap>(`${base}/analytics/heatmaps?team=${team}`)
      .then((heat) => figure.draw(heat.grid, heat.pitch_m, heat.total))
      .catch((error) => figure.fail((error as Error).message));
  }

  api<{ teams: TeamStats[] }>(`${base}/analytics/teams`)
    .then(({ teams: rows }) => {
      replace(teamTable, teamsTable(rows, teams));
      replace(possession, possessionChart(rows, teams.names, teams.colours));
    })
    .catch((error) => {
      replace(teamTable, h("p", { class: "muted" }, (error as Error).message));
      replace(possession, h("p", { class: "muted" }, "Possession is not available."));
    });

  api<{ players: PlayerStats[] }>(`${base}/analytics/players`)
    .then(({ players }) => replace(playerTable, playersTable(players, teams, (p) => void showPlayerHeat(playerHeat, base, match, p, teams))))
    .catch((error) => replace(playerTable, h("p", { class: "muted" }, (error as Error).message)));
}

function heatFigure(title: string, id: string) {
  const canvas = h("canvas", { class: "heat-canvas", id, role: "img", "aria-label": `Heatmap of ${title}: loading` });
  const caption = h("figcaption", null, title);
  const root = h("figure", { class: "heat" }, canvas, caption);
  requestAnimationFrame(() => drawPitch(prepare(canvas)));
  return {
    root,
    draw(grid: number[][], pitch: [number, number] = PITCH, total = 0) {
      const view = prepare(canvas, pitch);
      drawPitch(view, pitch);
      drawHeat(view, grid, pitch);
      canvas.dataset.total = String(total);
      canvas.setAttribute("aria-label", `Heatmap of ${title}: ${busiest(grid, pitch)}`);
    },
    fail(message: string) {
      caption.textContent = `${title}: ${message}`;
    },
  };
}

// Where the busiest third of the pitch is, in words (the canvas's text alternative).
function busiest(grid: number[][], pitch: [number, number]): string {
  const total = grid.flat().reduce((a, b) => a + b, 0);
  if (total === 0) return "no positions recorded";
  const thirds = [0, 0, 0];
  grid.forEach((column, ix) => column.forEach((n) => (thirds[Math.min(2, Math.floor((3 * ix) / grid.length))] += n)));
  const names = ["the left third", "the middle third", "the right third"];
  const top = thirds.indexOf(Math.max(...thirds));
  return `most time in ${names[top]} of the ${pitch[0]} m pitch (${Math.round((100 * thirds[top]) / total)}%)`;
}

function teamsTable(rows: TeamStats[], teams: Teams): HTMLElement {
  const ordered = [1, 0].map((team) => rows.find((r) => r.team === team)).filter((r): r is TeamStats => !!r);
  const share = (r: TeamStats) => (r.possession_share === null ? "—" : `${Math.round(r.possession_share * 100)}%`);
  return h(
    "table",
    { class: "data" },
    h("caption", { class: "visually-hidden" }, "Team totals"),
    h(
      "thead",
      null,
      h(
        "tr",
        null,
        ["Team", "Tracks", "Distance (km)", "Mean speed (km/h)", "Top speed (km/h)", "Sprints", "Possession"].map((t) => h("th", { scope: "col" }, t)),
      ),
    ),
    h(
      "tbody",
      null,
      ordered.map((r) =>
        h(
          "tr",
          null,
          h("th", { scope: "row" }, h("span", { class: "swatch", style: { background: teams.colours[r.team] } }), teams.names[r.team]),
          h("td", null, String(r.tracks)),
          h("td", null, number(r.distance_m / 1000, 2)),
          h("td", null, kmh(r.mean_speed)),
          h("td", null, kmh(r.max_speed)),
          h("td", null, String(r.sprints)),
          h("td", null, share(r)),
        ),
      ),
    ),
  );
}

type Column = { key: keyof PlayerStats; label: string; value: (p: PlayerStats) => string };

function playersTable(players: PlayerStats[], teams: Teams, select: (p: PlayerStats) => void): HTMLElement {
  if (players.length === 0) return h("p", { class: "muted" }, "No players were tracked.");
  const columns: Column[] = [
    { key: "track_id", label: "Track", value: (p) => `#${p.track_id}` },
    { key: "team", label: "Team", value: (p) => teams.names[p.team] ?? "—" },
    { key: "minutes_played", label: "Minutes", value: (p) => number(p.minutes_played, 1) },
    { key: "distance_m", label: "Distance (m)", value: (p) => number(p.distance_m, 0) },
    { key: "max_speed", label: "Top speed (km/h)", value: (p) => kmh(p.max_speed) },
    { key: "sprints", label: "Sprints", value: (p) => String(p.sprints) },
  ];
  let sortKey: keyof PlayerStats = "distance_m";
  let descending = true;
  const body = h("tbody");
  const heads = columns.map((column) => {
    const button = h("button", { type: "button", class: "sort" }, column.label);
    const th = h("th", { scope: "col", "aria-sort": "none" }, button);
    button.addEventListener("click", () => {
      descending = sortKey === column.key ? !descending : column.key !== "track_id" && column.key !== "team";
      sortKey = column.key;
      fill();
    });
    return th;
  });
  function fill(): void {
    const sorted = [...players].sort((a, b) => (Number(a[sortKey]) - Number(b[sortKey])) * (descending ? -1 : 1));
    heads.forEach((th, i) => th.setAttribute("aria-sort", columns[i].key === sortKey ? (descending ? "descending" : "ascending") : "none"));
    replace(
      body,
      sorted.map((p) =>
        h(
          "tr",
          { dataset: { track: String(p.track_id) } },
          columns.map((c, i) => (i === 0 ? h("th", { scope: "row" }, c.value(p)) : h("td", null, c.value(p)))),
          h("td", null, h("button", { type: "button", class: "button small", "aria-label": `Heatmap of track ${p.track_id}`, onclick: () => select(p) }, "Heatmap")),
        ),
      ),
    );
  }
  fill();
  return h(
    "table",
    { class: "data" },
    h("caption", { class: "visually-hidden" }, "Per-player statistics; the column buttons sort the table"),
    h("thead", null, h("tr", null, heads, h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Actions")))),
    body,
  );
}

// A player's heatmap: their track's points over the match, counted on the analysis grid.
async function showPlayerHeat(root: HTMLElement, base: string, match: Match, player: PlayerStats, teams: Teams): Promise<void> {
  const figure = heatFigure(`track #${player.track_id} (${teams.names[player.team] ?? "no team"})`, "heatmap-player");
  replace(root, h("h3", null, "Selected player"), figure.root);
  const [nx, ny] = [20, 16];
  const grid = Array.from({ length: nx }, () => new Array<number>(ny).fill(0));
  const duration = match.duration_s ?? 600;
  try {
    for (let start = 0; start < duration; start += 600) {
      const tracks = await api<Tracks>(`${base}/analytics/tracks?start_s=${start}&end_s=${Math.min(duration, start + 600) || start + 600}&track_id=${player.track_id}`);
      for (const track of tracks.tracks) {
        for (const [, x, y] of track.points) {
          const ix = Math.min(nx - 1, Math.max(0, Math.floor((x / PITCH[0]) * nx)));
          const iy = Math.min(ny - 1, Math.max(0, Math.floor((y / PITCH[1]) * ny)));
          grid[ix][iy] += 1;
        }
      }
    }
    figure.draw(grid, PITCH, grid.flat().reduce((a, b) => a + b, 0));
    announce(`Heatmap of track ${player.track_id} shown`);
  } catch (error) {
    figure.fail((error as Error).message);
  }
}
