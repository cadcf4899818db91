// The viewer's shell: a hash router, the top bar, and the session's comings and goings.
import "./styles.css";
import { api, ApiError, onSessionExpired, type Organization, signedIn, signOut, userEmail } from "./api.mts";
import { announce, h, replace } from "./dom.mts";
import { type Context, type Dispose, link, navigate, ROUTE_AGAIN } from "./nav.mts";
import { renderAdmin } from "./views/admin.mts";
import { renderMatch } from "./views/match.mts";
import { renderMatches } from "./views/matches.mts";
import { renderSignIn } from "./views/signin.mts";


const main = document.getElementById("main") as HTMLElement;
const topbar = document.getElementById("topbar") as HTMLElement;
let dispose: Dispose | null = null;
let orgs: Organization[] | null = null;
let expiredNotice = "";
let afterSignIn: string | null = null; // where the visitor was going, for after signing in

function currentPath(): string {
  return location.hash.startsWith("#/") ? location.hash.slice(1) : "/";
}

function setTitle(text: string): void {
  document.title = text ? `${text} · Polyvision` : "Polyvision";
}

function renderTopbar(ctx: Context | null): void {
  if (!signedIn()) {
    replace(topbar, h("span", { class: "brand" }, "Polyvision"));
    return;
  }
  const orgPicker =
    ctx && ctx.orgs.length > 1
      ? h(
          "label",
          { class: "org-picker" },
          h("span", { class: "visually-hidden" }, "Organization"),
          h(
            "select",
            { onchange: (e: Event) => navigate(`/orgs/${(e.target as HTMLSelectElement).value}`) },
            ctx.orgs.map((org) => h("option", { value: org.id, selected: org.id === ctx.org.id }, org.name)),
          ),
        )
      : ctx
        ? h("span", { class: "org-name" }, ctx.org.name)
        : null;
  const admin = ctx && (ctx.can("manage_members") || ctx.can("manage_devices"));
  replace(
    topbar,
    h("a", { class: "brand", href: ctx ? `#/orgs/${ctx.org.id}` : "#/" }, "Polyvision"),
    orgPicker,
    h(
      "nav",
      { "aria-label": "Main" },
      ctx ? link(`/orgs/${ctx.org.id}`, "Matches") : null,
      admin && ctx ? link(`/orgs/${ctx.org.id}/admin`, "Members & devices") : null,
    ),
    h("span", { class: "user", title: userEmail() }, userEmail()),
    h(
      "button",
      {
        type: "button",
        class: "button ghost",
        onclick: async () => {
          await signOut();
          announce("Signed out");
          navigate("/signin");
        },
      },
      "Sign out",
    ),
  );
  // The current page's link is marked for assistive technologies.
  for (const anchor of topbar.querySelectorAll<HTMLAnchorElement>("nav a")) {
    const path = anchor.getAttribute("href")!.slice(1);
    if (currentPath() === path || (path.endsWith("/admin") === false && currentPath().startsWith(`${path}/matches`))) {
      anchor.setAttribute("aria-current", "page");
    }
  }
}

function notFound(): void {
  setTitle("Not found");
  replace(
    main,
    h(
      "section",
      { class: "panel empty" },
      h("h1", null, "Not found"),
      h("p", null, "There is nothing here, or you have no access to it."),
      link("/", "Back to your matches"),
    ),
  );
}

async function organizations(): Promise<Organization[]> {
  orgs ??= await api<Organization[]>("/orgs");
  return orgs;
}

async function context(orgId: string): Promise<Context | null> {
  const list = await organizations();
  try {
    const org = await api<Organization>(`/orgs/${encodeURIComponent(orgId)}`);
    const permissions = new Set(org.permissions ?? []);
    return { org, orgs: list, can: (permission) => permissions.has(permission) };
  } catch (error) {
    if (error instanceof ApiError && (error.status === 404 || error.status === 422)) return null;
    throw error;
  }
}

async function route(): Promise<void> {
  dispose?.();
  dispose = null;
  const path = currentPath();
  if (!signedIn()) {
    orgs = null;
    renderTopbar(null);
    setTitle("Sign in");
    if (path !== "/signin" && path !== "/") afterSignIn = path;
    dispose = renderSignIn(main, expiredNotice, () => {
      const next = afterSignIn ?? "/";
      afterSignIn = null;
      navigate(next);
    });
    expiredNotice = "";
    if (path !== "/signin") history.replaceState(null, "", "#/signin");
    return;
  }
  if (path === "/signin") return navigate("/");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  try {
    if (parts.length === 0) {
      const list = await organizations();
      if (list.length === 0) {
        renderTopbar(null);
        replace(
          main,
          h("section", { class: "panel empty" }, h("h1", null, "No organization yet"), h("p", null, "Ask an administrator of your club to add you.")),
        );
        return;
      }
      history.replaceState(null, "", `#/orgs/${list[0].id}`);
      return route();
    }
    if (parts[0] !== "orgs" || parts.length < 2) return notFound();
    const ctx = await context(parts[1]);
    renderTopbar(ctx);
    if (!ctx) return notFound();
    main.setAttribute("aria-busy", "true");
    if (parts.length === 2) {
      setTitle(`Matches of ${ctx.org.name}`);
      dispose = renderMatches(main, ctx);
    } else if (parts[2] === "matches" && parts.length === 4) {
      setTitle("Match");
      dispose = renderMatch(main, ctx, parts[3], setTitle);
    } else if (parts[2] === "admin" && parts.length === 3) {
      setTitle(`Members and devices of ${ctx.org.name}`);
      dispose = renderAdmin(main, ctx);
    } else notFound();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return; // handled by onSessionExpired
    replace(
      main,
      h("section", { class: "panel empty" }, h("h1", null, "Something went wrong"), h("p", { role: "alert" }, String((error as Error).message))),
    );
  } finally {
    main.removeAttribute("aria-busy");
  }
}

onSessionExpired(() => {
  expiredNotice = "Your session has expired. Sign in again.";
  orgs = null;
  void route();
});

window.addEventListener("hashchange", () => {
  // In-page anchors (the skip link) are not routes.
  if (location.hash.startsWith("#/")) {
    void route().then(() => main.focus({ preventScroll: true }));
  }
});

window.addEventListener(ROUTE_AGAIN, () => void route());

document.querySelector<HTMLAnchorElement>(".skip-link")?.addEventListener("click", (event) => {
  event.preventDefault();
  main.focus();
});

void route();
