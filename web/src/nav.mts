// Navigation between the page's views (hash routes) and what every view gets.
import type { Organization } from "./api.mts";
import { h } from "./dom.mts";

export type Context = {
  org: Organization;
  orgs: Organization[];
  can: (permission: string) => boolean;
};

/** What a view leaves running (polling, a player): stopped when the view is left. */
export type Dispose = () => void;

export const ROUTE_AGAIN = "polyvision:route";

/** Go to ``path`` (``/orgs/…``), adding it to the history. */
export function navigate(path: string): void {
  if (location.hash === `#${path}`) window.dispatchEvent(new Event(ROUTE_AGAIN));
  else location.hash = path;
}

export function link(path: string, ...children: (string | Node)[]): HTMLAnchorElement {
  return h("a", { href: `#${path}` }, ...children);
}
