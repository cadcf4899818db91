// The API as the viewer uses it: the session's tokens, one fetch that refreshes an expired
// access token once, and the answers' shapes (only the fields the page reads).

const SESSION_KEY = "polyvision.session";

type Session = { access: string; refresh: string; email: string };

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Raised when the session is gone (expired, revoked): the page returns to sign-in. */
export class SessionExpired extends ApiError {
  constructor() {
    super(401, "Your session has expired. Sign in again.");
  }
}

let session: Session | null = load();
let refreshing: Promise<boolean> | null = null;
const expiredListeners: Array<() => void> = [];

function load(): Session | null {
  try {
    const raw = localStorage.getItem(SESSION_KEY);
    return raw ? (JSON.parse(raw) as Session) : null;
  } catch {
    return null;
  }
}

function save(next: Session | null): void {
  session = next;
  if (next) localStorage.setItem(SESSION_KEY, JSON.stringify(next));
  else localStorage.removeItem(SESSION_KEY);
}

export function signedIn(): boolean {
  return session !== null;
}

export function userEmail(): string {
  return session?.email ?? "";
}

/** Call ``listener`` when a request finds the session expired. */
export function onSessionExpired(listener: () => void): void {
  expiredListeners.push(listener);
}

async function problemText(response: Response): Promise<string> {
  try {
    const body = await response.json();
    if (typeof body?.detail === "string") return body.detail;
    if (Array.isArray(body?.errors) && body.errors.length) {
      return body.errors.map((e: { msg?: string }) => e.msg).join("; ");
    }
  } catch {
    /* not JSON */
  }
  return `${response.status} ${response.statusText}`;
}

async function refreshTokens(): Promise<boolean> {
  if (!session) return false;
  const current = session;
  const response = await fetch("/auth/refresh", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ refresh_token: current.refresh }),
  }).catch(() => null);
  if (!response || !response.ok) return false;
  const tokens = await response.json();
  save({ ...current, access: tokens.access_token, refresh: tokens.refresh_token });
  return true;
}

function expire(): never {
  // Requests in flight may all find the session gone: the page hears of it once.
  const had = session !== null;
  save(null);
  if (had) for (const listener of expiredListeners) listener();
  throw new SessionExpired();
}

export type RequestOptions = { method?: string; body?: unknown; signal?: AbortSignal };

/** JSON from the API (null for 204); a 401 refreshes once, then the session has expired. */
export async function api<T = any>(path: string, options: RequestOptions = {}): Promise<T> {
  if (!session) expire();
  const send = () =>
    fetch(path, {
      method: options.method ?? "GET",
      signal: options.signal,
      headers: {
        Authorization: `Bearer ${session?.access ?? ""}`,
        ...(options.body === undefined ? {} : { "Content-Type": "application/json" }),
      },
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
    });
  let response = await send();
  if (response.status === 401) {
    refreshing ??= refreshTokens().finally(() => (refreshing = null));
    if (!(await refreshing)) expire();
    response = await send();
    if (response.status === 401) expire();
  }
  if (!response.ok) throw new ApiError(response.status, await problemText(response));
  if (response.status === 204) return null as T;
  return (await response.json()) as T;
}

export async function signIn(email: string, password: string): Promise<void> {
  const response = await fetch("/auth/login", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ email, password }),
  });
  if (!response.ok) {
    const text = response.status === 401 ? "Wrong email or password." : await problemText(response);
    throw new ApiError(response.status, text);
  }
  const tokens = await response.json();
  save({ access: tokens.access_token, refresh: tokens.refresh_token, email: email.trim().toLowerCase() });
}

export async function signOut(): Promise<void> {
  const refresh = session?.refresh;
  save(null);
  if (refresh) {
    await fetch("/auth/logout", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ refresh_token: refresh }),
    }).catch(() => undefined);
  }
}

// --- answers ---------------------------------------------------------------------------

export type Role = "owner" | "admin" | "analyst" | "viewer";

export type Organization = {
  id: string;
  name: string;
  slug: string;
  role: Role;
  permissions?: string[];
};

export type TeamRef = { id: string; name: string };

export type Match = {
  id: string;
  title: string;
  home_team: TeamRef | null;
  away_team: TeamRef | null;
  venue: string | null;
  kickoff_at: string | null;
  device: TeamRef | null;
  status: "created" | "uploading" | "processing" | "ready" | "failed" | "cancelled";
  duration_s: number | null;
  revision: number;
  created_at: string;
  home_kit_colour: string | null;
  away_kit_colour: string | null;
};

export type MatchPage = { items: Match[]; next_cursor: string | null };

export type StageStatus = {
  done: number;
  total: number;
  seconds: number | null;
  running: boolean;
  frames_done: number;
  frames_total: number;
};

export type Processing = {
  status: string;
  match_status: string | null;
  workflow_id: string | null;
  run_id: string | null;
  progress: {
    stage: string;
    revision: number;
    failed: string | null;
    stages: Record<string, StageStatus>;
    running: string[];
  } | null;
  ui_url: string | null;
  failure: string | null;
  warnings: string[];
};

export type Playback = {
  master_url: string;
  dash_url: string | null;
  poster_url: string | null;
  thumbnails_url: string | null;
  panorama_master_url: string | null;
  panorama_dash_url: string | null;
  expires_at: string;
  revision: number;
  view: string | null;
};

export type ViewItem = {
  view: string;
  mode: string;
  status: string;
  ui_url: string;
  failure: string | null;
};

export type Track = { track_id: number; team: number; points: [number, number, number, number | null][] };
export type Tracks = { fps: number; start_s: number; end_s: number; tracks: Track[] };
export type Ball = { points: [number, number, number, number, boolean, boolean, number][] };

export type Heatmap = {
  team: number;
  pitch_m: [number, number];
  shape: [number, number];
  total: number;
  grid: number[][];
};

export type PlayerStats = {
  track_id: number;
  team: number;
  minutes_played: number;
  distance_m: number;
  max_speed: number;
  sprints: number;
};

export type TeamStats = {
  team: number;
  tracks: number;
  minutes_played: number;
  distance_m: number;
  mean_speed: number;
  max_speed: number;
  sprints: number;
  possession_share: number | null;
  // Per-minute possession, where the API serves it (older answers do not).
  possession_minutes?: Array<{ minute: number; possession_frames: number; in_play_frames: number }>;
};

export type Member = { user_id: string; email: string; full_name: string | null; role: Role; joined_at: string };
export type Device = { id: string; name: string; status: string; provisioned_at: string; revoked_at: string | null };
export type ProvisioningCode = { id: string; created_at: string; expires_at: string; used_at: string | null; state: string };
