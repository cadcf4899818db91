// Possession as a chart: per minute where the API serves it, else the match's share.
import type { TeamStats } from "./api.mts";
import { h, svg } from "./dom.mts";

export function possessionChart(teams: TeamStats[], names: Record<number, string>, colours: Record<number, string>): HTMLElement {
  const home = teams.find((t) => t.team === 1);
  const away = teams.find((t) => t.team === 0);
  const minutes = mergeMinutes(home?.possession_minutes, away?.possession_minutes);
  if (minutes.length > 0) return perMinute(minutes, names, colours);
  const share = home?.possession_share ?? null;
  if (share === null || away?.possession_share === null || away?.possession_share === undefined) {
    return h("p", { class: "muted" }, "Possession is not available for this match (the ball was not tracked).");
  }
  const homePct = Math.round(share * 100);
  return h(
    "div",
    { class: "possession" },
    h(
      "div",
      {
        class: "split-bar",
        role: "img",
        "aria-label": `Possession: ${names[1]} ${homePct}%, ${names[0]} ${100 - homePct}%`,
      },
      h("span", { style: { width: `${homePct}%`, background: colours[1] } }, `${homePct}%`),
      h("span", { style: { width: `${100 - homePct}%`, background: colours[0] } }, `${100 - homePct}%`),
    ),
    h("p", { class: "muted small" }, "Share over the whole match; possession per minute appears here once the analysis provides it."),
  );
}

type MinuteShare = { minute: number; home: number; away: number };

function mergeMinutes(
  home: TeamStats["possession_minutes"],
  away: TeamStats["possession_minutes"],
): MinuteShare[] {
  if (!home?.length && !away?.length) return [];
  const byMinute = new Map<number, MinuteShare>();
  for (const [team, rows] of [["home", home ?? []], ["away", away ?? []]] as const) {
    for (const row of rows) {
      const entry = byMinute.get(row.minute) ?? { minute: row.minute, home: 0, away: 0 };
      entry[team] = row.possession_frames;
      byMinute.set(row.minute, entry);
    }
  }
  return [...byMinute.values()].sort((a, b) => a.minute - b.minute);
}

function perMinute(minutes: MinuteShare[], names: Record<number, string>, colours: Record<number, string>): HTMLElement {
  const width = Math.max(240, minutes.length * 14);
  const height = 120;
  const bar = width / minutes.length;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "minutes-chart", role: "img", "aria-labelledby": "possession-title" });
  chart.appendChild(svg("title", { id: "possession-title" }, `Possession per minute, ${names[1]} above and ${names[0]} below`));
  chart.appendChild(svg("line", { x1: 0, x2: width, y1: height / 2, y2: height / 2, class: "axis" }));
  for (const [i, m] of minutes.entries()) {
    const total = m.home + m.away;
    if (total === 0) continue;
    const up = (m.home / total) * (height / 2 - 4);
    const down = (m.away / total) * (height / 2 - 4);
    const x = i * bar + 1;
    chart.appendChild(svg("rect", { x, y: height / 2 - up, width: bar - 2, height: up, fill: colours[1] }, svg("title", {}, `Minute ${m.minute + 1}: ${names[1]} ${Math.round((100 * m.home) / total)}%`)));
    chart.appendChild(svg("rect", { x, y: height / 2, width: bar - 2, height: down, fill: colours[0] }, svg("title", {}, `Minute ${m.minute + 1}: ${names[0]} ${Math.round((100 * m.away) / total)}%`)));
  }
  // The figures as a table too, for whoever cannot see the chart.
  const table = h(
    "table",
    { class: "visually-hidden" },
    h("caption", null, "Possession per minute"),
    h("thead", null, h("tr", null, h("th", { scope: "col" }, "Minute"), h("th", { scope: "col" }, names[1]), h("th", { scope: "col" }, names[0]))),
    h(
      "tbody",
      null,
      minutes.map((m) => {
        const total = m.home + m.away || 1;
        return h("tr", null, h("th", { scope: "row" }, String(m.minute + 1)), h("td", null, `${Math.round((100 * m.home) / total)}%`), h("td", null, `${Math.round((100 * m.away) / total)}%`));
      }),
    ),
  );
  return h("div", { class: "possession" }, chart, table);
}
