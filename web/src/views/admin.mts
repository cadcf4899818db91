// For administrators: the members and their roles, the devices, the provisioning codes.
import { api, type Device, type Member, type ProvisioningCode, type Role } from "../api.mts";
import { announce, dateTime, h, replace, scrollRegion, uid } from "../dom.mts";
import type { Context, Dispose } from "../nav.mts";

const ROLES: Role[] = ["owner", "admin", "analyst", "viewer"];

export function renderAdmin(main: HTMLElement, ctx: Context): Dispose {
  const base = `/orgs/${ctx.org.id}`;
  const members = h("section", { class: "panel", "aria-labelledby": "members-title" });
  const devices = h("section", { class: "panel", "aria-labelledby": "devices-title" });
  replace(
    main,
    h(
      "div",
      { class: "page admin" },
      h("h1", null, `Members & devices`),
      ctx.can("manage_members") ? members : null,
      ctx.can("manage_devices") ? devices : null,
    ),
  );
  if (ctx.can("manage_members")) void renderMembers(members, base, ctx);
  if (ctx.can("manage_devices")) void renderDevices(devices, base);
  return () => undefined;
}

async function renderMembers(root: HTMLElement, base: string, ctx: Context): Promise<void> {
  const feedback = h("p", { class: "feedback", role: "status" });
  const list = scrollRegion("Members", h("p", { class: "muted" }, "Loading…"));
  const emailId = uid("member-email");
  const roleId = uid("member-role");
  const email = h("input", { id: emailId, type: "email", required: true, autocomplete: "off" });
  const role = h("select", { id: roleId }, ROLES.filter((r) => r !== "owner" || ctx.org.role === "owner").map((r) => h("option", { value: r, selected: r === "viewer" }, r)));

  async function load(): Promise<void> {
    try {
      const rows = await api<Member[]>(`${base}/members`);
      replace(
        list,
        h(
          "table",
          { class: "data" },
          h("caption", { class: "visually-hidden" }, "Members"),
          h("thead", null, h("tr", null, ["Member", "Role", "Joined", ""].map((t) => h("th", { scope: "col" }, t || h("span", { class: "visually-hidden" }, "Actions"))))),
          h("tbody", null, rows.map((m) => memberRow(m))),
        ),
      );
    } catch (error) {
      replace(list, h("p", { class: "form-error" }, (error as Error).message));
    }
  }

  function memberRow(member: Member): HTMLElement {
    const id = uid("role");
    const select = h("select", { id }, ROLES.map((r) => h("option", { value: r, selected: r === member.role }, r)));
    select.addEventListener("change", async () => {
      try {
        await api(`${base}/members/${member.user_id}`, { method: "PATCH", body: { role: select.value } });
        feedback.textContent = `${member.email} is now ${select.value}.`;
      } catch (error) {
        feedback.textContent = (error as Error).message;
        select.value = member.role;
      }
    });
    const remove = h("button", { type: "button", class: "button small danger" }, "Remove");
    remove.addEventListener("click", async () => {
      if (!window.confirm(`Remove ${member.email} from the organization?`)) return;
      try {
        await api(`${base}/members/${member.user_id}`, { method: "DELETE" });
        feedback.textContent = `${member.email} was removed.`;
        void load();
      } catch (error) {
        feedback.textContent = (error as Error).message;
      }
    });
    return h(
      "tr",
      null,
      h("th", { scope: "row" }, member.full_name ? `${member.full_name} ` : "", h("span", { class: "muted" }, member.email)),
      h("td", null, h("label", { for: id, class: "visually-hidden" }, `Role of ${member.email}`), select),
      h("td", null, dateTime(member.joined_at)),
      h("td", null, remove),
    );
  }

  replace(
    root,
    h("h2", { id: "members-title" }, "Members"),
    h(
      "form",
      {
        class: "inline-form",
        "aria-label": "Add a member",
        onsubmit: async (e: Event) => {
          e.preventDefault();
          try {
            await api(`${base}/members`, { method: "POST", body: { email: email.value, role: role.value } });
            feedback.textContent = `${email.value} was added as ${role.value}.`;
            announce(feedback.textContent);
            email.value = "";
            void load();
          } catch (error) {
            feedback.textContent = (error as Error).message;
          }
        },
      },
      h("div", { class: "field grow" }, h("label", { for: emailId }, "Email of an existing account"), email),
      h("div", { class: "field" }, h("label", { for: roleId }, "Role"), role),
      h("button", { type: "submit", class: "button primary" }, "Add member"),
    ),
    feedback,
    list,
  );
  await load();
}

async function renderDevices(root: HTMLElement, base: string): Promise<void> {
  const feedback = h("p", { class: "feedback", role: "status" });
  const deviceList = scrollRegion("Devices");
  const codeList = scrollRegion("Provisioning codes");
  const issued = h("div", { class: "issued", "aria-live": "polite" });
  const ttlId = uid("ttl");
  const ttl = h(
    "select",
    { id: ttlId },
    h("option", { value: "3600" }, "1 hour"),
    h("option", { value: "86400", selected: true }, "1 day"),
    h("option", { value: "604800" }, "7 days"),
  );

  async function load(): Promise<void> {
    try {
      const [rows, codes] = await Promise.all([
        api<Device[]>(`${base}/devices`),
        api<ProvisioningCode[]>(`${base}/devices/provisioning-codes`),
      ]);
      replace(
        deviceList,
        rows.length === 0
          ? h("p", { class: "muted" }, "No device yet: create a provisioning code and run `polyvision-edge provision` on the box.")
          : h(
              "table",
              { class: "data" },
              h("caption", { class: "visually-hidden" }, "Devices"),
              h("thead", null, h("tr", null, ["Device", "Status", "Provisioned", ""].map((t) => h("th", { scope: "col" }, t || h("span", { class: "visually-hidden" }, "Actions"))))),
              h("tbody", null, rows.map((d) => deviceRow(d))),
            ),
      );
      replace(
        codeList,
        codes.length === 0
          ? h("p", { class: "muted" }, "No provisioning codes.")
          : h(
              "table",
              { class: "data" },
              h("caption", { class: "visually-hidden" }, "Provisioning codes"),
              h("thead", null, h("tr", null, ["Created", "Expires", "State"].map((t) => h("th", { scope: "col" }, t)))),
              h("tbody", null, codes.map((c) => h("tr", null, h("td", null, dateTime(c.created_at)), h("td", null, dateTime(c.expires_at)), h("td", null, h("span", { class: `badge code-${c.state}` }, c.state))))),
            ),
      );
    } catch (error) {
      replace(deviceList, h("p", { class: "form-error" }, (error as Error).message));
    }
  }

  function deviceRow(device: Device): HTMLElement {
    const revoke = h("button", { type: "button", class: "button small danger", disabled: device.status === "revoked" }, "Revoke");
    revoke.addEventListener("click", async () => {
      if (!window.confirm(`Revoke ${device.name}? It will not be able to upload again.`)) return;
      try {
        await api(`${base}/devices/${device.id}/revoke`, { method: "POST" });
        feedback.textContent = `${device.name} was revoked.`;
        void load();
      } catch (error) {
        feedback.textContent = (error as Error).message;
      }
    });
    return h(
      "tr",
      null,
      h("th", { scope: "row" }, device.name),
      h("td", null, h("span", { class: `badge device-${device.status}` }, device.status)),
      h("td", null, dateTime(device.provisioned_at)),
      h("td", null, revoke),
    );
  }

  replace(
    root,
    h("h2", { id: "devices-title" }, "Devices"),
    deviceList,
    h("h3", null, "Provisioning codes"),
    h(
      "form",
      {
        class: "inline-form",
        "aria-label": "Create a provisioning code",
        onsubmit: async (e: Event) => {
          e.preventDefault();
          try {
            const code = await api<{ code: string; expires_at: string }>(`${base}/devices/provisioning-codes`, { method: "POST", body: { ttl_s: Number(ttl.value) } });
            const output = h("output", { class: "code" }, code.code);
            const copy = h("button", { type: "button", class: "button small" }, "Copy");
            copy.addEventListener("click", () => void navigator.clipboard?.writeText(code.code).then(() => announce("Code copied")));
            replace(issued, h("p", null, "New code (shown only now), valid until ", dateTime(code.expires_at), ":"), h("p", { class: "code-row" }, output, copy));
            void load();
          } catch (error) {
            feedback.textContent = (error as Error).message;
          }
        },
      },
      h("div", { class: "field" }, h("label", { for: ttlId }, "Valid for"), ttl),
      h("button", { type: "submit", class: "button primary" }, "Create provisioning code"),
    ),
    issued,
    feedback,
    codeList,
  );
  await load();
}
