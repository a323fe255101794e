// Cordon console: plain JavaScript, no build step. Every call goes through the API with
// the signed-in token; values are escaped before they reach the page.
"use strict";
const $ = (id) => document.getElementById(id);
const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => ({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;","'":"&#39;"}[c]));
let token = sessionStorage.getItem("cordon-token") || "";
let alerts = [], selected = 0, current = null;
/** "6h 2m" from seconds. */
function span(seconds) {
  const s = Math.round(seconds); if (s < 60) return s + "s";
  const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
  return [d && d + "d", h && h + "h", m && m + "m"].filter(Boolean).join(" ") || "0m";
}
/** A badge for an alert detected well after its last event (past the 5-minute lateness). */
function lateBadge(a) {
  return a.detected_after > 300 ? ` <span class="late" title="detected ${esc(span(a.detected_after))} after its last event">late ${esc(span(a.detected_after))}</span>` : "";
}
const nanosToIso = (ns) => (ns && ns > 0 ? new Date(ns / 1e6).toISOString() : "-");

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: { "Authorization": "Bearer " + token, "Content-Type": "application/json", ...(options.headers || {}) } });
  const text = await response.text();
  let body; try { body = JSON.parse(text); } catch { body = text; }
  if (response.status === 401) { signOut("Your token was refused; sign in again."); throw new Error("401"); }
  if (!response.ok) throw new Error((body && body.error) || response.status + " " + text);
  return body;
}

function signOut(message) {
  token = ""; sessionStorage.removeItem("cordon-token");
  for (const id of ["nav", "signout"]) $(id).classList.add("hidden");
  document.querySelectorAll("main > section").forEach((s) => s.classList.add("hidden"));
  $("signin").classList.remove("hidden"); $("signin-error").textContent = message || ""; $("who").textContent = "";
}

$("signin-form").addEventListener("submit", async (event) => {
  event.preventDefault(); token = $("token").value.trim();
  try { await api("/api/v1/rules"); sessionStorage.setItem("cordon-token", token); start(); }
  catch (error) { if (error.message !== "401") $("signin-error").textContent = error.message; }
});
$("signout").addEventListener("click", () => signOut());

function start() {
  $("signin").classList.add("hidden"); $("nav").classList.remove("hidden"); $("signout").classList.remove("hidden");
  $("who").textContent = "signed in";
  if (!location.hash || location.hash === "#/") location.hash = "#/alerts"; else route();
}

function show(page) {
  document.querySelectorAll("main > section").forEach((s) => s.classList.toggle("hidden", s.id !== "page-" + page));
  document.querySelectorAll("#nav a").forEach((a) => a.classList.toggle("on", a.dataset.page === page || (page === "alert" && a.dataset.page === "alerts") || (page === "entity" && a.dataset.page === "entities")));
}

function route() {
  if (!token) return signOut();
  const [, page, id, rest] = location.hash.split("/");
  if (page === "alert" && id) { show("alert"); loadAlert(decodeURIComponent(id)); }
  else if (page === "entities") { show("entities"); loadEntities(); }
  else if (page === "entity" && id && rest) { show("entity"); loadEntity(decodeURIComponent(id), decodeURIComponent(rest)); }
  else if (page === "actions") { show("actions"); loadActions(); }
  else if (page === "rules") { show("rules"); loadRules(); }
  else if (page === "hunt") { show("hunt"); }
  else if (page === "health") { show("health"); loadHealth(); }
  else { show("alerts"); loadAlerts(); }
}
window.addEventListener("hashchange", route);

async function loadAlerts() {
  const status = $("f-status").value;
  const body = await api("/api/v1/alerts?limit=500" + (status ? "&status=" + status : ""));
  alerts = body.alerts; renderAlerts();
}
function renderAlerts() {
  const severity = $("f-severity").value, text = $("f-text").value.toLowerCase();
  const shown = alerts.filter((a) => (!severity || a.severity === severity) &&
    (!text || [a.rule_id, a.host_id, a.user_name, a.title].join(" ").toLowerCase().includes(text)));
  const counts = {}; for (const a of alerts) counts[a.severity] = (counts[a.severity] || 0) + 1;
  $("counts").innerHTML = ["critical", "high", "medium", "low"].map((s) => `<span>${s} <b>${counts[s] || 0}</b></span>`).join("");
  selected = Math.min(selected, Math.max(shown.length - 1, 0));
  $("alerts").innerHTML = shown.map((a, i) => `<tr data-id="${esc(a.id)}" class="${i === selected ? "sel" : ""}">
    <td class="sev ${esc(a.severity)}">${esc(a.severity)}</td><td>${esc(a.rule_id)}<div class="hint">${esc(a.title)}</div></td>
    <td>${esc(a.host_id || "-")}</td><td>${esc(a.user_name || "-")}</td><td>${a.count}</td><td>${a.risk}</td>
    <td>${esc(a.status)}</td><td class="mono">${esc(a.last_seen)}${lateBadge(a)}</td></tr>`).join("") ||
    `<tr><td colspan="8" class="hint">No alerts match.</td></tr>`;
  document.querySelectorAll("#alerts tr[data-id]").forEach((row) => row.addEventListener("click", () => { location.hash = "#/alert/" + encodeURIComponent(row.dataset.id); }));
}
for (const id of ["f-status"]) $(id).addEventListener("change", loadAlerts);
for (const id of ["f-severity", "f-text"]) $(id).addEventListener("input", renderAlerts);

async function loadAlert(id) {
  const a = await api("/api/v1/alerts/" + encodeURIComponent(id)); current = a;
  $("a-title").innerHTML = `<span class="sev ${esc(a.severity)}">${esc(a.severity)}</span> ${esc(a.title)}`;
  const fields = { id: a.id, rule: a.rule_id, status: a.status + (a.close_reason ? " (" + a.close_reason + ")" : ""),
    assignee: a.assignee || "-", host: a.host_id || "-", user: a.user_name || "-", agent: a.agent_id || "-",
    "first / last seen": a.first_seen + " / " + a.last_seen,
    "detected after": a.detected_after == null ? "-" : span(a.detected_after) + (a.detected_after > 300 ? " (late: the host's events arrived after the attack)" : ""),
    "count / risk": a.count + " / " + a.risk,
    "ATT&CK / ATLAS": (a.attack || []).join(", ") || "-", ...Object.fromEntries(Object.entries(a.fields || {}).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)])) };
  $("a-fields").innerHTML = Object.entries(fields).map(([k, v]) => `<div>${esc(k)}</div><div class="mono">${esc(v)}</div>`).join("");
  $("a-evidence").innerHTML = a.evidence.map((e) => `<tr><td class="mono">${esc(e.time)}</td><td>${esc(e.kind)}</td><td>${esc(e.host_id)}</td><td class="mono" data-event="${esc(e.event_id)}">${esc(e.event_id)}</td><td data-via="${esc(e.event_id)}" class="hint">-</td></tr>`).join("") +
    (a.evidence_total > a.evidence.length ? `<tr><td colspan="5" class="hint">${a.evidence_total - a.evidence.length} more not shown</td></tr>` : "");
  loadEvidenceDetail(a);
  $("a-notes").innerHTML = (a.notes || []).map((n) => `<tr><td class="mono">${esc(n.at)}</td><td>${esc(n.author)}</td><td>${esc(n.kind)}</td><td>${esc(n.text)}</td></tr>`).join("");
  loadAlertActions(a); loadTimeline(a);
}
/** What an event is about, in one line. */
function detailOf(e) {
  const attributes = e.attributes || {};
  // A risk incident's evidence is its alerts' risk; a building block's, its signal.
  if (e.event_name === "cordon.risk") return `alert ${attributes["risk.alert_id"] || "?"} (${attributes["risk.rule"] || "?"}, ${attributes["risk.severity"] || "?"}) adds ${attributes["risk.score"] || "?"} to ${attributes["risk.entity_type"] || "?"} ${attributes["risk.entity"] || "?"}`;
  if (e.event_name === "cordon.signal") return `signal: ${attributes["signal.title"] || attributes["signal.rule"] || "?"}`;
  const what = e.file_path || e.destination_address || e.process_command_line || e.broker_operation || e.credential_action || e.dlp_policy || "";
  return what + (e.policy_decision ? " [" + e.policy_decision + "]" : "") + (e.data_classification ? " (" + e.data_classification + ")" : "");
}
/** How an event arrived: its producer (or that nobody vouched for it), TLS, signature. */
function provenanceOf(e) {
  const who = e.producer ? esc(e.producer) : `<span class="err">unauthenticated</span>`;
  const signature = e.signature_status === "valid" ? "signed" : e.signature_status === "bad" ? `<span class="err">bad signature</span>` : "unsigned";
  return `${who}<div class="hint">${esc(e.transport || "?")}${e.tls ? " · TLS" : ""} · ${signature}</div>`;
}
async function loadEvidenceDetail(a) {
  try {
    const body = await api("/api/v1/alerts/" + encodeURIComponent(a.id) + "/events");
    for (const e of body.rows) {
      const cell = document.querySelector(`#a-evidence td[data-event="${CSS.escape(e.event_id)}"]`);
      if (cell) cell.innerHTML = `${esc(detailOf(e) || e.event_id)}<div class="hint">${esc(e.event_id)}</div>`;
      const via = document.querySelector(`#a-evidence td[data-via="${CSS.escape(e.event_id)}"]`);
      if (via) via.innerHTML = provenanceOf(e);
    }
  } catch (error) { /* the refs alone still show */ }
}
async function loadAlertActions(a) {
  const body = await api("/api/v1/actions?alert_id=" + encodeURIComponent(a.id));
  $("a-actions").innerHTML = body.actions.map(actionRow).join("") || `<tr><td colspan="6" class="hint">No responses for this alert.</td></tr>`;
  wireActionButtons($("a-actions"), $("a-act-msg"), () => loadAlertActions(a));
}
async function loadTimeline(a) {
  if (!a.host_id) { $("a-timeline").innerHTML = ""; return; }
  const from = new Date(new Date(a.first_seen).getTime() - 15 * 60000).toISOString();
  const to = new Date(new Date(a.last_seen).getTime() + 5 * 60000).toISOString();
  try {
    const body = await api(`/api/v1/timeline?host_id=${encodeURIComponent(a.host_id)}&since=${from}&until=${to}&limit=100`);
    const evidence = new Set(a.evidence.map((e) => e.event_id));
    $("a-timeline").innerHTML = body.rows.map((e) => {
      return `<tr style="${evidence.has(e.event_id) ? "background:#2a2417" : ""}"><td class="mono">${esc(e.time)}</td><td>${esc(e.event_name)}</td><td>${esc(e.user_name || "-")}</td><td class="mono">${esc(detailOf(e))}</td></tr>`;
    }).join("");
  } catch (error) { $("a-timeline").innerHTML = `<tr><td class="err">${esc(error.message)}</td></tr>`; }
}
async function triage(change) {
  try { await api("/api/v1/alerts/" + encodeURIComponent(current.id), { method: "PATCH", body: JSON.stringify(change) });
        $("t-msg").className = "msg"; $("t-msg").textContent = "Saved."; loadAlert(current.id); }
  catch (error) { $("t-msg").className = "err"; $("t-msg").textContent = error.message; }
}
$("t-ack").addEventListener("click", () => triage({ status: "acknowledged" }));
$("t-close").addEventListener("click", () => triage({ status: "closed", close_reason: $("t-reason").value || undefined }));
$("t-reopen").addEventListener("click", () => triage({ status: "open" }));
$("t-add").addEventListener("click", () => { triage({ note: $("t-note").value }); $("t-note").value = ""; });

function actionRow(x, full = false) {
  const buttons = x.state === "awaiting_approval"
    ? `<button class="primary" data-do="approve" data-id="${esc(x.id)}">Approve</button> <button class="danger" data-do="deny" data-id="${esc(x.id)}">Deny</button>`
    : x.state === "failed" ? `<button data-do="retry" data-id="${esc(x.id)}">Retry</button>` : "";
  const note = x.state === "awaiting_approval" ? x.approval_reason : (x.last_error || (x.decided_by ? "by " + x.decided_by : ""));
  const target = full
    ? `<td>${esc(x.target.host_id || "-")}</td><td>${esc(x.target.user_name || "-")}</td><td>${esc(x.rule_id || "-")}</td><td>${esc(x.requested_by)}</td>`
    : `<td>${esc([x.target.host_id, x.target.user_name, x.target.token_id].filter(Boolean).join(" / "))}</td>`;
  return `<tr><td>${esc(x.action)}</td><td class="state ${esc(x.state)}">${esc(x.state)}</td>${target}
    <td>${x.attempts}</td><td class="hint">${esc(note || "")}</td><td>${buttons}</td></tr>`;
}
function wireActionButtons(container, message, reload) {
  container.querySelectorAll("button[data-do]").forEach((button) => button.addEventListener("click", async () => {
    const note = button.dataset.do === "deny" ? prompt("Why deny it?") : null;
    try { await api(`/api/v1/actions/${encodeURIComponent(button.dataset.id)}/${button.dataset.do}`, { method: "POST", body: JSON.stringify(note ? { note } : {}) });
          message.className = "msg"; message.textContent = button.dataset.do + ": done"; reload(); }
    catch (error) { message.className = "err"; message.textContent = error.message; }
  }));
}
async function loadActions() {
  const state = $("f-astate").value;
  const body = await api("/api/v1/actions?limit=500" + (state ? "&state=" + state : ""));
  $("actions").innerHTML = body.actions.map((x) => actionRow(x, true)).join("") || `<tr><td colspan="9" class="hint">Nothing here.</td></tr>`;
  wireActionButtons($("actions"), $("actions-msg"), loadActions);
}
$("f-astate").addEventListener("change", loadActions);

async function loadRules() {
  const body = await api("/api/v1/rules");
  $("rules").innerHTML = body.rules.map((r) => `<tr><td>${esc(r.id)}<div class="hint">${esc(r.title)}</div></td><td class="sev ${esc(r.severity)}">${esc(r.severity)}</td>
    <td>${esc((r.attack || []).concat(r.atlas || []).join(", "))}</td><td>${r.evaluations ?? 0}${r.evaluations ? `<div class="hint">${(1000 * (r.evaluation_seconds ?? 0) / r.evaluations).toFixed(1)} ms each</div>` : ""}${r.evaluate_every ? `<div class="hint">every ${esc(r.evaluate_every)}, ${r.held_events ?? 0} events held</div>` : ""}${r.anchor ? `<div class="hint">matched where ${esc(Object.entries(r.anchor).map(([column, values]) => `${column} is ${values.join(" or ")}`).join(", "))}</div>` : ""}</td><td>${r.matches ?? 0}</td><td>${r.errors ?? 0}</td>
    <td>${r.kept_rows ?? 0}</td><td class="mono">${esc(r.last_evaluated || "-")}</td><td class="err">${esc(r.load_error || r.last_error || "")}</td></tr>`).join("");
}

async function loadHealth() {
  try {
    const [body, gaps] = await Promise.all([api("/api/v1/health/hosts?limit=200"), api("/api/v1/alerts?rule_id=telemetry-gap&status=open&limit=500")]);
    const t = body.totals;
    $("h-totals").innerHTML = [["hosts", t.hosts], ["delayed", t.delayed], ["late", t.late], ["too old", t.too_old], ["skewed", t.skewed], ["silent hosts", body.silent_hosts]]
      .map(([k, v]) => `<span>${k} <b>${v}</b></span>`).join("");
    const gapCount = {}; for (const a of gaps.alerts) gapCount[a.host_id] = (gapCount[a.host_id] || 0) + 1;
    const row = (h, silent) => `<tr><td>${esc(h.host_id)}${silent ? ' <span class="late">silent</span>' : ""}</td><td>${h.delayed}</td><td>${h.late}</td><td>${h.too_old}</td><td>${h.skewed}</td>
      <td>${gapCount[h.host_id] || 0}</td><td>${esc(h.max_delay > 0 ? span(h.max_delay / 1e9) : "-")}</td><td class="mono">${esc(nanosToIso(h.newest_time))}</td><td class="mono">${esc(nanosToIso(h.last_arrival))}</td></tr>`;
    const seen = new Set(body.troubled.map((h) => h.host_id));
    const gapOnly = Object.keys(gapCount).filter((host) => !seen.has(host)).map((host) => ({ host_id: host, delayed: 0, late: 0, too_old: 0, skewed: 0 }));
    $("health").innerHTML = [...body.troubled.map((h) => row(h, false)), ...gapOnly.map((h) => row(h, false)), ...body.silent.map((h) => row(h, true))].join("") ||
      `<tr><td colspan="9" class="hint">Every host's events are on time.</td></tr>`;
    $("health-error").textContent = "";
  } catch (error) { $("health-error").textContent = error.message; }
}

async function hunt() {
  $("hunt-error").textContent = ""; $("hunt-info").textContent = "running...";
  try {
    const body = await api("/api/v1/hunt", { method: "POST", body: JSON.stringify({ sql: $("sql").value, limit: 1000 }) });
    const columns = [...new Set(body.rows.flatMap((row) => Object.keys(row)))];
    $("hunt-table").innerHTML = `<thead><tr>${columns.map((c) => `<th>${esc(c)}</th>`).join("")}</tr></thead><tbody>` +
      body.rows.map((row) => `<tr>${columns.map((c) => `<td class="mono">${esc(typeof row[c] === "object" && row[c] !== null ? JSON.stringify(row[c]) : row[c])}</td>`).join("")}</tr>`).join("") + "</tbody>";
    $("hunt-info").textContent = `${body.rows.length} rows${body.truncated ? " (more matched)" : ""} in ${body.elapsed_ms} ms`;
  } catch (error) { $("hunt-info").textContent = ""; $("hunt-error").textContent = error.message; }
}
$("run").addEventListener("click", hunt);
$("sql").addEventListener("keydown", (event) => { if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); hunt(); } });

document.addEventListener("keydown", (event) => {
  if (!token || ["INPUT", "TEXTAREA", "SELECT"].includes(event.target.tagName)) {
    if (event.key === "Escape") event.target.blur();
    return;
  }
  const page = location.hash.split("/")[1];
  const go = { a: "#/alerts", c: "#/actions", e: "#/entities", r: "#/rules", h: "#/hunt", d: "#/health" }[event.key];
  if (go) { location.hash = go; return; }
  if (event.key === "Escape" && page === "alert") { location.hash = "#/alerts"; return; }
  if (page === "alerts" || !page) {
    const rows = document.querySelectorAll("#alerts tr[data-id]");
    if (event.key === "j") { selected = Math.min(selected + 1, rows.length - 1); renderAlerts(); }
    else if (event.key === "k") { selected = Math.max(selected - 1, 0); renderAlerts(); }
    else if (event.key === "Enter" && rows[selected]) { location.hash = "#/alert/" + encodeURIComponent(rows[selected].dataset.id); }
    else if (event.key === "/") { event.preventDefault(); $("f-text").focus(); }
  }
});
setInterval(() => { const page = location.hash.split("/")[1]; if (token && (page === "alerts")) loadAlerts(); if (token && page === "actions") loadActions(); if (token && page === "health") loadHealth(); }, 10000);
if (token) start(); else signOut();
