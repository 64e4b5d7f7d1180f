// The team (#/members): members and pending invitations. Everyone reads it; admins and owners invite
// by email (the link goes only to that mailbox), change roles and remove. Membership is not race data:
// these writes go straight to the API (like API keys), never through the offline outbox.

import { h, mount, icon, toast, field, emptyState, notAvailable, confirmDialog } from "../dom.js";
import { dateTime } from "../format.js";

const ROLES = ["viewer", "engineer", "admin", "owner"];

function problem(error) {
  if (error.missingRoute) return notAvailable("Members");
  return h("div", { class: "empty error", role: "alert" }, h("strong", {}, "Could not load the team"),
    h("p", {}, error.describe ? error.describe() : String(error)));
}

function statusBadge(member) {
  const label = { active: "Active", invited: "Invited", expired: "Invite expired" }[member.status] || member.status;
  const kind = { active: "succeeded", invited: "pending", expired: "failed" }[member.status] || "";
  return h("span", { class: `badge badge-${kind}` }, h("span", { class: "badge-dot", "aria-hidden": "true" }), label);
}

export function membersView(ctx) {
  ctx.shell.setNav("members");
  ctx.realtime.leave();
  ctx.shell.setCrumbs([{ label: "Team", href: "#/members" }]);
  const admin = ctx.isAdmin();
  // Only an owner may grant, change or remove the owner role (the API says so too).
  const grantable = ROLES.filter((r) => r !== "owner" || ctx.role() === "owner");
  const me = (ctx.session && ctx.session.user) || {};
  const isMe = (m) => m.status === "active" && String(m.email).toLowerCase() === String(me.email || "").toLowerCase();
  const list = h("div", { "aria-busy": "true" }, h("p", { class: "muted" }, "Loading…"));

  const email = h("input", { type: "email", name: "email", required: true, placeholder: "name@team.com", autocomplete: "off" });
  const role = h("select", { name: "role" }, grantable.map((r) => h("option", { value: r, selected: r === "engineer" }, r)));
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const sent = h("p", { class: "muted small", role: "status" });
  const submit = h("button", { type: "submit", class: "btn btn-primary" }, icon("plus"), "Send invitation");
  const form = h("form", { class: "inline-form", "aria-label": "Invite by email", novalidate: true, onsubmit: async (event) => {
    event.preventDefault();
    error.hidden = true;
    sent.textContent = "";
    const address = email.value.trim();
    if (!address) { error.textContent = "Enter the email to invite."; error.hidden = false; email.focus(); return; }
    submit.disabled = true;
    try {
      const invite = await ctx.api.post("/members", { email: address, role: role.value });
      sent.textContent = `Invitation emailed to ${invite.email} as ${invite.role}. They join once they open the link.`;
      email.value = "";
      load();
    } catch (exc) {
      error.textContent = exc.describe();
      error.hidden = false;
    } finally {
      submit.disabled = false;
    }
  } }, field("Email", email), field("Role", role), submit, error);

  const changeRole = async (member, select) => {
    const previous = member.role;
    select.disabled = true;
    try {
      const changed = await ctx.api.patch(`/members/${member.id}`, { role: select.value });
      Object.assign(member, changed);
      toast(`${member.name || member.email} is now ${member.role}`, "ok");
    } catch (exc) {
      select.value = previous;
      toast(exc.describe(), "error", 8000);
    } finally {
      select.disabled = false;
    }
  };

  const remove = async (member) => {
    const who = member.name || member.email;
    const invited = member.status !== "active";
    const ok = await confirmDialog(invited ? `Withdraw the invitation to ${member.email}?` : `Remove ${who} from the team?`,
      invited ? "The emailed link stops working." : "Their next request is refused; API keys they created are revoked and invitations they sent are withdrawn.",
      invited ? "Withdraw" : "Remove", true);
    if (!ok) return;
    try {
      const answer = await ctx.api.delete(`/members/${member.id}`);
      const extra = [answer.revokedApiKeys && answer.revokedApiKeys.length ? `${answer.revokedApiKeys.length} API key(s) revoked` : "",
        answer.withdrawnInvites && answer.withdrawnInvites.length ? `${answer.withdrawnInvites.length} invitation(s) withdrawn` : ""]
        .filter(Boolean).join(", ");
      toast(`${invited ? "Withdrew the invitation to" : "Removed"} ${who}${extra ? ` (${extra})` : ""}`, "ok");
      load();
    } catch (exc) { toast(exc.describe(), "error", 8000); }
  };

  const roleCell = (member) => {
    const touchable = admin && (member.role !== "owner" || ctx.role() === "owner") && !isMe(member);
    if (!touchable) return h("span", { class: `role role-${member.role}` }, member.role);
    const select = h("select", { "aria-label": `Role of ${member.email}`, onchange: () => changeRole(member, select) },
      grantable.map((r) => h("option", { value: r, selected: r === member.role }, r)));
    return select;
  };

  const load = async () => {
    try {
      const members = await ctx.loadAll("/members");
      const order = { active: 0, invited: 1, expired: 2 };
      members.sort((a, b) => (order[a.status] ?? 3) - (order[b.status] ?? 3) || String(a.email).localeCompare(b.email));
      mount(list, members.length ? h("div", { class: "grid-scroll" }, h("table", { class: "grid members-grid" },
        h("caption", { class: "visually-hidden" }, "Members and invitations"),
        h("thead", {}, h("tr", {}, ["Name", "Email", "Role", "Status", "Since", ...(admin ? [""] : [])]
          .map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, members.map((m) => h("tr", { class: `member-row member-${m.status}`, "data-email": m.email },
          h("td", {}, m.name || h("span", { class: "muted" }, "—"), isMe(m) ? h("span", { class: "tag" }, "YOU") : null),
          h("td", { class: "mono" }, m.email),
          h("td", {}, roleCell(m)),
          h("td", {}, statusBadge(m)),
          h("td", { class: "muted" }, m.status === "active" ? dateTime(m.joinedAt || m.createdAt)
            : `sent ${dateTime(m.createdAt)} · expires ${dateTime(m.inviteExpiresAt)}`),
          admin ? h("td", { class: "row-actions" }, isMe(m) || (m.role === "owner" && ctx.role() !== "owner") ? null
            : h("button", { type: "button", class: "btn btn-danger-ghost btn-small",
              "aria-label": `${m.status === "active" ? "Remove" : "Withdraw invitation to"} ${m.email}`, onclick: () => remove(m) },
            m.status === "active" ? "Remove" : "Withdraw")) : null)))))
        : emptyState("Nobody here yet", admin ? "Invite your team by email." : ""));
    } catch (exc) {
      mount(list, problem(exc));
    }
    list.removeAttribute("aria-busy");
  };

  const el = h("div", { class: "page" },
    h("div", { class: "page-head" }, h("h1", {}, "Team"),
      h("p", { class: "muted" }, admin ? "Invitations go by email; nobody joins until they open the link and agree."
        : "Who is on the team. Owners and admins invite and change roles.")),
    admin ? h("section", { class: "panel" }, h("h2", { class: "panel-title" }, "Invite by email"), form, sent) : null,
    h("section", { class: "panel" }, h("h2", { class: "panel-title" }, "Members and invitations"), list));
  return { el, ready: load(), refresh: load };
}
