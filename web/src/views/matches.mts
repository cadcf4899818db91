// The organization's matches: search, filters, processing status, one page at a time.
import { api, type Match, type MatchPage } from "../api.mts";
import { announce, dateTime, debounce, h, replace, uid } from "../dom.mts";
import { type Context, type Dispose } from "../nav.mts";

export const STATUS_LABELS: Record<string, string> = {
  created: "Created",
  uploading: "Uploading",
  processing: "Processing",
  ready: "Ready",
  failed: "Failed",
  cancelled: "Cancelled",
};

export function statusBadge(status: string): HTMLElement {
  return h("span", { class: `badge status-${status}`, dataset: { status } }, STATUS_LABELS[status] ?? status);
}

export function teamsLine(match: Match): string {
  const home = match.home_team?.name;
  const away = match.away_team?.name;
  return home || away ? `${home ?? "Home"} vs ${away ?? "Away"}` : "";
}

function duration(seconds: number | null): string {
  if (!seconds) return "";
  const minutes = Math.round(seconds / 60);
  return minutes >= 1 ? `${minutes} min` : `${Math.round(seconds)} s`;
}

function card(ctx: Context, match: Match): HTMLElement {
  const meta = [teamsLine(match), match.venue, dateTime(match.kickoff_at ?? match.created_at), duration(match.duration_s)]
    .filter(Boolean)
    .join(" · ");
  return h(
    "li",
    { class: "match-card", dataset: { matchId: match.id } },
    h(
      "a",
      { href: `#/orgs/${ctx.org.id}/matches/${match.id}`, class: "match-link" },
      h("span", { class: "match-title" }, match.title),
      h("span", { class: "match-meta" }, meta),
    ),
    statusBadge(match.status),
  );
}

export function renderMatches(main: HTMLElement, ctx: Context): Dispose {
  let cursor: string | null = null;
  let generation = 0;
  let poll: number | undefined;
  const list = h("ul", { class: "match-list", "aria-live": "polite", "aria-busy": "false", id: "match-list" });
  const more = h("button", { type: "button", class: "button", hidden: true }, "Show more matches");
  const summary = h("p", { class: "muted", id: "match-summary" });

  const searchId = uid("search");
  const statusId = uid("status");
  const teamId = uid("team");
  const sortId = uid("sort");
  const search = h("input", { id: searchId, type: "search", placeholder: "Title, venue or team", autocomplete: "off" });
  const status = h(
    "select",
    { id: statusId },
    h("option", { value: "" }, "All statuses"),
    Object.entries(STATUS_LABELS).map(([value, label]) => h("option", { value }, label)),
  );
  const team = h("select", { id: teamId }, h("option", { value: "" }, "All teams"));
  const sort = h(
    "select",
    { id: sortId },
    h("option", { value: "-kickoff_at" }, "Newest kickoff first"),
    h("option", { value: "kickoff_at" }, "Oldest kickoff first"),
    h("option", { value: "title" }, "Title A–Z"),
    h("option", { value: "-created_at" }, "Recently added"),
  );

  async function load(append: boolean): Promise<void> {
    const mine = ++generation;
    const query = new URLSearchParams({ limit: "20", sort: sort.value });
    if (search.value.trim()) query.set("q", search.value.trim());
    if (status.value) query.append("status", status.value);
    if (team.value) query.set("team_id", team.value);
    if (append && cursor) query.set("cursor", cursor);
    list.setAttribute("aria-busy", "true");
    try {
      const page = await api<MatchPage>(`/orgs/${ctx.org.id}/matches?${query}`);
      if (mine !== generation) return;
      cursor = page.next_cursor;
      if (!append) list.replaceChildren();
      for (const match of page.items) list.appendChild(card(ctx, match));
      more.hidden = cursor === null;
      const shown = list.children.length;
      summary.textContent = shown === 0 ? "No matches found." : `${shown} match${shown === 1 ? "" : "es"} shown.`;
      if (!append) announce(summary.textContent);
      schedulePoll();
    } catch (error) {
      summary.textContent = (error as Error).message;
    } finally {
      list.setAttribute("aria-busy", "false");
    }
  }

  // Matches that are processing change status by themselves: refresh their badges.
  function schedulePoll(): void {
    window.clearTimeout(poll);
    const busy = [...list.querySelectorAll<HTMLElement>(".badge")].some((badge) =>
      ["processing", "uploading"].includes(badge.dataset.status ?? ""),
    );
    if (!busy) return;
    poll = window.setTimeout(async () => {
      for (const item of list.querySelectorAll<HTMLElement>("li[data-match-id]")) {
        const badge = item.querySelector<HTMLElement>(".badge")!;
        if (!["processing", "uploading"].includes(badge.dataset.status ?? "")) continue;
        try {
          const match = await api<Match>(`/orgs/${ctx.org.id}/matches/${item.dataset.matchId}`);
          if (match.status !== badge.dataset.status) {
            badge.replaceWith(statusBadge(match.status));
            announce(`${match.title}: ${STATUS_LABELS[match.status] ?? match.status}`);
          }
        } catch {
          /* the next poll tries again */
        }
      }
      schedulePoll();
    }, 4000);
  }

  const reload = () => void load(false);
  search.addEventListener("input", debounce(reload, 250));
  for (const select of [status, team, sort]) select.addEventListener("change", reload);
  more.addEventListener("click", () => void load(true));

  replace(
    main,
    h(
      "section",
      { class: "page" },
      h("div", { class: "page-head" }, h("h1", null, "Matches"), summary),
      h(
        "form",
        { class: "filters", role: "search", "aria-label": "Find matches", onsubmit: (e: Event) => e.preventDefault() },
        h("div", { class: "field grow" }, h("label", { for: searchId }, "Search"), search),
        h("div", { class: "field" }, h("label", { for: statusId }, "Status"), status),
        h("div", { class: "field" }, h("label", { for: teamId }, "Team"), team),
        h("div", { class: "field" }, h("label", { for: sortId }, "Order"), sort),
      ),
      list,
      more,
    ),
  );
  api<{ id: string; name: string }[]>(`/orgs/${ctx.org.id}/teams`)
    .then((teams) => teams.forEach((t) => team.appendChild(h("option", { value: t.id }, t.name))))
    .catch(() => (team.disabled = true));
  reload();
  return () => {
    generation += 1;
    window.clearTimeout(poll);
  };
}
