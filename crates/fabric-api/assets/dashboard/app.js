// The Fabric dashboard: figures, a throughput chart, the dispatchers of
// a group (role and log position), workers, recent
// tasks with a drill-down, dead letters with a retry button, jobs with
// their counts and a page of steps, schedules with their next run and last
// result, and the live event feed. Everything comes from this dispatcher's REST API; the page
// loads nothing from anywhere else. The token is taken once (from the
// URL's #token=... that `fabric up` prints, or typed in) and kept for the
// tab's session; the feed reconnects with a backoff, so the page keeps
// working across a dispatcher restart.
"use strict";

const $ = (id) => document.getElementById(id);
let token = null;
let role = null;

function takeToken() {
  const m = location.hash.match(/token=([A-Za-z0-9_]+)/);
  if (m) {
    sessionStorage.setItem("fabric-token", m[1]);
    history.replaceState(null, "", location.pathname);
  }
  return sessionStorage.getItem("fabric-token");
}

async function api(path, opts = {}) {
  const resp = await fetch(path, {
    ...opts,
    headers: { Authorization: "Bearer " + token, ...(opts.headers || {}) },
  });
  if (resp.status === 401) {
    sessionStorage.removeItem("fabric-token");
    showLogin("that token is not accepted: " + (await resp.text()));
    throw new Error("unauthorized");
  }
  const body = await resp.json();
  if (!resp.ok) throw new Error(body.error ? body.error.message : resp.statusText);
  return body;
}

function cell(row, text, cls) {
  const td = row.insertCell();
  td.textContent = text == null ? "-" : String(text);
  if (cls) td.className = cls;
  return td;
}

function size(n) {
  if (n == null) return "-";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (Math.round(n * 10) / 10) + " " + units[i];
}

// Throughput (tasks finished per second) and the queue over time.
const series = { t: [], rate: [], queued: [], running: [], latency: [] };
let latencyNow = null;
let lastFinished = null, lastAt = null, chart = null;

function chartPoint(stats) {
  const now = Date.now() / 1000;
  const finished = Object.values(stats.finished).reduce((a, b) => a + b, 0);
  const rate = lastFinished == null ? 0 : Math.max(0, (finished - lastFinished) / Math.max(now - lastAt, 0.001));
  lastFinished = finished; lastAt = now;
  for (const [k, v] of [["t", now], ["rate", rate], ["queued", stats.queued], ["running", stats.running], ["latency", latencyNow]]) {
    series[k].push(v);
    if (series[k].length > 300) series[k].shift();
  }
  const data = [series.t, series.rate, series.queued, series.running, series.latency];
  if (!chart) {
    chart = new uPlot({
      width: Math.min(900, document.body.clientWidth - 40), height: 200,
      scales: { ms: {} },
      axes: [{}, {}, { scale: "ms", side: 1, grid: { show: false } }],
      series: [{}, { label: "finished/s", stroke: "#161" }, { label: "queued", stroke: "#a60" },
        { label: "running", stroke: "#24a" }, { label: "run time p50 (ms)", stroke: "#a1a", scale: "ms" }],
    }, data, $("chart"));
  } else {
    chart.setData(data);
  }
}

function renderFigures(stats) {
  // Every final status, then the rest.
  const figures = [["queued", stats.queued], ["running", stats.running],
    ...Object.entries(stats.finished).map(([k, v]) => [k.replaceAll("_", " "), v]),
    ["dead letters", stats.dead_letters],
    ["workers", stats.workers], ["free slots", stats.free_slots], ["total", stats.total]];
  const box = $("figures");
  box.replaceChildren(...figures.map(([k, v]) => {
    const d = document.createElement("div");
    d.dataset.figure = k;
    const b = document.createElement("b");
    b.textContent = v;
    d.append(b, k);
    return d;
  }));
}

function renderWorkers(workers) {
  const body = $("workers").tBodies[0];
  body.replaceChildren();
  for (const w of workers) {
    const r = body.insertRow();
    r.dataset.worker = w.name;
    cell(r, w.name); cell(r, w.state); cell(r, w.running + "/" + w.slots);
    cell(r, size(w.memory_bytes)); cell(r, w.labels.join(", ")); cell(r, w.addr);
  }
}

// The dispatchers of a group (the section stays hidden for one alone).
function renderMembers(members) {
  $("dispatchers").hidden = members.length === 0;
  const body = $("members").tBodies[0];
  body.replaceChildren();
  for (const m of members) {
    const r = body.insertRow();
    r.dataset.member = m.addr;
    cell(r, m.addr + (m.this ? " (this one)" : ""));
    cell(r, m.role, m.role === "leader" ? "succeeded" : null);
    cell(r, m.voter ? "yes" : "learner");
    cell(r, m.log_index); cell(r, m.applied); cell(r, m.term);
    cell(r, m.key.slice(0, 12));
  }
}

// A follower redirects its API to the leader, which the page (bound to
// this origin) cannot follow: it says where the leader's dashboard is.
async function checkLeader() {
  const h = await (await fetch("/health")).json();
  const url = h.group && h.group.leader_api_url;
  $("follower").hidden = !url;
  if (url) $("leader-link").href = url.replace(/\/$/, "") + "/";
  return !url;
}

function duration(t) {
  const a = t.attempts[t.attempts.length - 1];
  if (!a || a.ended_ms == null) return null;
  return (a.ended_ms - a.started_ms) + " ms";
}

function renderTasks(tasks) {
  // The run time of the recent finished tasks, for the chart.
  const times = tasks.map((t) => {
    const a = t.attempts[t.attempts.length - 1];
    return a && a.ended_ms != null ? a.ended_ms - a.started_ms : null;
  }).filter((x) => x != null).sort((a, b) => a - b);
  latencyNow = times.length ? times[Math.floor(times.length / 2)] : null;
  const body = $("tasks").tBodies[0];
  body.replaceChildren();
  for (const t of tasks) {
    const r = body.insertRow();
    r.className = "clickable";
    r.dataset.task = t.id;
    const status = t.status || t.state;
    cell(r, t.id); cell(r, status, status); cell(r, t.worker_name || (t.worker && t.worker.slice(0, 12)));
    cell(r, duration(t)); cell(r, t.attempt); cell(r, t.trace);
    const act = r.insertCell();
    if (t.dead_letter && role === "admin") {
      const b = document.createElement("button");
      b.textContent = "retry";
      b.dataset.retry = t.id;
      b.onclick = async (ev) => {
        ev.stopPropagation();
        try {
          const created = await api("/api/v1/tasks/" + t.id + "/retry", { method: "POST" });
          note("retried as " + created.id);
        } catch (e) { note("retry refused: " + e.message); }
        refreshSoon();
      };
      act.append(b);
    }
    r.onclick = () => showTask(t.id);
  }
}

function counts(c) {
  return Object.entries(c).map(([k, v]) => v + " " + k.replaceAll("_", " ")).join(", ");
}

function renderJobs(jobs) {
  const body = $("jobs").tBodies[0];
  body.replaceChildren();
  for (const j of jobs) {
    const r = body.insertRow();
    r.className = "clickable";
    r.dataset.job = j.id;
    cell(r, j.id); cell(r, j.name); cell(r, j.state, j.state); cell(r, counts(j.counts));
    r.onclick = () => showJob(j.id);
  }
}

function renderSchedules(schedules) {
  const body = $("schedules").tBodies[0];
  body.replaceChildren();
  for (const s of schedules) {
    const r = body.insertRow();
    r.dataset.schedule = s.name;
    const last = s.runs.length ? s.runs[s.runs.length - 1] : null;
    const result = last ? (last.status || last.note || "-") : "-";
    const next = s.next_ms == null ? null : new Date(s.next_ms).toISOString().replace(".000Z", "Z");
    cell(r, s.name); cell(r, s.cron); cell(r, s.tz); cell(r, next);
    cell(r, s.paused ? "paused" : "active"); cell(r, result, last && last.status);
  }
}

// A job's page: each step, the steps it runs after, and its tasks.
async function showJob(id) {
  $("detail").hidden = false;
  $("detail-kind").textContent = "Job";
  $("detail-id").textContent = id;
  const job = await api("/api/v1/jobs/" + id);
  let text = "name     " + job.name + "\nstate    " + job.state + "\ntasks    " + counts(job.counts) +
    (job.rescues ? "\nrescued  " + job.rescues + "x" : "");
  for (const s of job.steps) {
    text += "\n\nstep " + s.name + (s.after.length ? "  (after " + s.after.join(", ") + ")" : "");
    for (const t of s.tasks) text += "\n  " + t.id + "  " + t.status + (t.item ? "  " + t.item : "");
  }
  $("detail-body").textContent = text;
}

async function showTask(id) {
  $("detail").hidden = false;
  $("detail-kind").textContent = "Task";
  $("detail-id").textContent = id;
  const task = await api("/api/v1/tasks/" + id);
  let text = "status   " + (task.status || task.state) + "\nworker   " + (task.worker_name || "-") +
    "\ntrace    " + (task.trace || "-") +
    "\nsecrets  " + (task.secrets && task.secrets.length ? task.secrets.join(", ") + " (values never shown)" : "-") +
    "\nattempts\n" +
    task.attempts.map((a) => "  #" + a.attempt + " on " + a.worker.slice(0, 12) + ": " + (a.outcome || "running")).join("\n");
  if (task.status) {
    try {
      const out = await api("/api/v1/tasks/" + id + "/output");
      text += "\nexit code " + out.exit_code + "\n--- stdout\n" + (out.stdout ?? "(binary)") +
        "\n--- stderr\n" + (out.stderr ?? "(binary)");
    } catch (e) { text += "\n(no output: " + e.message + ")"; }
  }
  const seen = [...$("events").children].map((li) => li.textContent).filter((l) => l.includes(id));
  text += "\n--- events seen on this page\n" + (seen.reverse().join("\n") || "(none yet)");
  $("detail-body").textContent = text;
}

function note(text) {
  const li = document.createElement("li");
  li.textContent = new Date().toISOString().slice(11, 19) + " " + text;
  const list = $("events");
  list.prepend(li);
  while (list.children.length > 200) list.lastChild.remove();
}

async function refresh() {
  if (!(await checkLeader())) return;
  const [stats, members, workers, page, jobs, schedules] = await Promise.all([
    api("/api/v1/stats"), api("/api/v1/members"), api("/api/v1/workers"), api("/api/v1/tasks?limit=50"),
    api("/api/v1/jobs?limit=20"), api("/api/v1/schedules"),
  ]);
  renderFigures(stats); renderMembers(members); renderWorkers(workers); renderTasks(page.tasks, workers);
  renderJobs(jobs.jobs); renderSchedules(schedules);
  chartPoint(stats);
}

let pending = null;
function refreshSoon() {
  if (pending) return;
  pending = setTimeout(() => { pending = null; refresh().catch(() => {}); }, 250);
}

// The cluster feed over fetch (EventSource cannot send the token).
async function follow() {
  let backoff = 500;
  for (;;) {
    try {
      const resp = await fetch("/api/v1/events", { headers: { Authorization: "Bearer " + token } });
      if (resp.status === 401) {
        showLogin("that token is no longer accepted");
        return;
      }
      if (!resp.ok) throw new Error("HTTP " + resp.status);
      $("conn").textContent = "live";
      backoff = 500;
      const reader = resp.body.getReader();
      const dec = new TextDecoder();
      let buf = "", kind = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let i;
        while ((i = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, i); buf = buf.slice(i + 1);
          if (line.startsWith("event: ")) kind = line.slice(7);
          else if (line.startsWith("data: ")) {
            const d = JSON.parse(line.slice(6));
            note(kind + (d.task ? " " + d.task : "") + (d.status ? " " + d.status : "") + (d.detail ? " " + d.detail : ""));
            refreshSoon();
          }
        }
      }
    } catch (e) {
      $("conn").textContent = "reconnecting (" + e.message + ")";
    }
    await new Promise((r) => setTimeout(r, backoff));
    backoff = Math.min(backoff * 2, 5000);
    refreshSoon();
  }
}

function showLogin(why) {
  token = null;
  $("main").hidden = true;
  $("login").hidden = false;
  $("conn").textContent = why || "a token is needed";
}

let following = false, ticking = null;
function start() {
  $("login").hidden = true;
  $("main").hidden = false;
  // What this token may do: only an admin is offered the retry button.
  api("/api/v1/token")
    .then((t) => { role = t.role; })
    .catch(() => {})
    .finally(() => refresh().catch((e) => { $("conn").textContent = e.message; }));
  // One poll loop and one feed, however often the token is typed again.
  if (!ticking) ticking = setInterval(() => { if (token) refresh().catch(() => {}); }, 5000);
  if (!following) {
    following = true;
    follow().finally(() => { following = false; });
  }
}

$("login").onsubmit = (ev) => {
  ev.preventDefault();
  token = $("token").value.trim();
  sessionStorage.setItem("fabric-token", token);
  start();
};
$("detail-close").onclick = () => { $("detail").hidden = true; };
token = takeToken();
// A follower says so at once, token or not.
checkLeader().catch(() => {});
if (token) start(); else showLogin();
