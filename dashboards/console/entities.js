// Cordon console: entity risk. The riskiest users, hosts, agents and agent sessions by
// the decayed risk of their alerts, and one entity's page: its alerts, risk incidents,
// responses and signals on one timeline. Uses app.js's $, esc and api.
"use strict";

async function loadEntities() {
  const kind = $("f-etype").value;
  const body = await api("/api/v1/entities?limit=100" + (kind ? "&type=" + kind : ""));
  $("entities-info").textContent = `risk fades out over ${span(body.period_seconds)}`;
  $("entities").innerHTML = body.entities.map((e) => `<tr data-entity="${esc(e.type)}/${esc(encodeURIComponent(e.id))}">
    <td>${esc(e.type)}</td><td class="mono">${esc(e.id)}</td><td><b>${e.risk}</b></td><td>${e.alerts.length}</td>
    <td>${e.incidents.length ? `<span class="sev high">${e.incidents.length} incident${e.incidents.length > 1 ? "s" : ""}</span>` : "-"}</td>
    <td class="hint">${esc([...new Set(e.alerts.map((a) => a.rule_id))].join(", "))}</td></tr>`).join("") ||
    `<tr><td colspan="6" class="hint">No entity has risk: no alerts within the risk period.</td></tr>`;
  document.querySelectorAll("#entities tr[data-entity]").forEach((row) => row.addEventListener("click", () => { location.hash = "#/entity/" + row.dataset.entity; }));
}
$("f-etype").addEventListener("change", loadEntities);

async function loadEntity(kind, id) {
  const body = await api("/api/v1/entities/" + encodeURIComponent(kind) + "/" + encodeURIComponent(id));
  const e = body.entity;
  $("e-title").innerHTML = `${esc(e.type)} <span class="mono">${esc(e.id)}</span> · risk <b>${e.risk}</b>`;
  const items = [
    ...e.alerts.map((a) => ({ time: a.last_seen, what: "alert", sev: a.severity, text: a.title, link: "#/alert/" + encodeURIComponent(a.alert_id), detail: `${a.rule_id} · ${a.status} · adds ${a.risk}` })),
    ...body.incidents.map((a) => ({ time: a.last_seen, what: "risk incident", sev: a.severity, text: a.title, link: "#/alert/" + encodeURIComponent(a.id), detail: `risk ${a.fields.risk} from ${a.fields.alerts} alerts` })),
    ...body.actions.map((x) => ({ time: x.updated_at || x.created_at, what: "response", sev: "", text: `${x.action} ${x.state}`, link: "", detail: x.note || "" })),
    ...body.signals.rows.map((s) => ({ time: s.time, what: "signal", sev: "low", text: (s.attributes && s.attributes["signal.title"]) || "signal", link: "", detail: (s.attributes && s.attributes["signal.rule"]) || "" })),
  ].sort((a, b) => String(b.time).localeCompare(String(a.time)));
  $("e-timeline").innerHTML = items.map((i) => `<tr class="e-${esc(i.what.replace(" ", "-"))}"><td class="mono">${esc(i.time)}</td><td>${esc(i.what)}</td>
    <td class="sev ${esc(i.sev)}">${esc(i.sev)}</td><td>${i.link ? `<a href="${esc(i.link)}">${esc(i.text)}</a>` : esc(i.text)}</td><td class="hint">${esc(i.detail)}</td></tr>`).join("") ||
    `<tr><td colspan="5" class="hint">Nothing within the risk period.</td></tr>`;
}
