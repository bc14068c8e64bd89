// The netsvc console page: reads the node's JSON API, listens to
// /api/events for changes and polls /api/connections for message rates.
// Plain JS, no libraries; every value is put in the page as text.
"use strict";

(function () {
  // A token given as ?token= is moved by the console into a cookie
  // (HttpOnly, SameSite=Strict) that every request here carries.
  const KINDS = ["node", "registry", "supervisor", "exchange", "connection", "service", "actor"];
  const OPEN_BY_DEFAULT = new Set(["node", "registry", "supervisor", "exchange"]);
  const HISTORY = 60; // rate samples kept per link

  const state = {
    expanded: new Map(), // pid → open?, as the user chose
    linkPrev: new Map(), // link id → {t, in, out}
    linkHist: new Map(), // link id → [{in, out}]
    nodeFetched: 0,
    node: null,
  };

  // --- helpers ---

  // h builds an element: h("td", {class: "num"}, "12", child, ...).
  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") el.className = v;
      else if (k === "text") el.textContent = v;
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else if (k === "dataset") Object.assign(el.dataset, v);
      else el.setAttribute(k, v === true ? "" : v);
    }
    for (const kid of kids.flat()) {
      if (kid === undefined || kid === null || kid === false) continue;
      el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    }
    return el;
  }

  function $(id) { return document.getElementById(id); }


  async function api(path, opts) {
    opts = Object.assign({ cache: "no-store" }, opts || {});
    opts.headers = Object.assign({ Accept: "application/json" }, opts.headers || {});
    const r = await fetch(path, opts);
    let body = null;
    try { body = await r.json(); } catch (e) { /* not JSON */ }
    if (!r.ok) {
      const err = new Error((body && body.error) || r.status + " " + r.statusText);
      err.status = r.status;
      err.body = body;
      throw err;
    }
    return body;
  }

  function showError(msg) {
    const el = $("error");
    if (!msg) { el.hidden = true; return; }
    el.textContent = msg;
    el.hidden = false;
  }

  function fmtInt(n) { return (n || 0).toLocaleString("en-US"); }
  function fmtBytes(n) {
    n = n || 0;
    const u = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (i === 0 ? n : n.toFixed(1)) + " " + u[i];
  }
  function fmtRate(r) { return r >= 100 ? Math.round(r).toString() : r >= 10 ? r.toFixed(1) : r.toFixed(2); }
  function fmtAge(since) {
    const t = Date.parse(since);
    if (!t || t < 0) return "";
    return fmtDuration((Date.now() - t) / 1000);
  }
  function fmtDuration(s) {
    s = Math.max(0, Math.floor(s));
    const d = Math.floor(s / 86400), hh = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60), sec = s % 60;
    if (d) return d + "d " + hh + "h";
    if (hh) return hh + "h " + m + "m";
    if (m) return m + "m " + sec + "s";
    return sec + "s";
  }
  function shortProc(p) { return p ? String(p).slice(0, 8) + "…" : ""; }
  function audienceText(a) { return a === "" ? '""' : a; }
  function audienceTitle(a) {
    if (a === "*") return "visible everywhere";
    if (a === "") return "visible in its own process only";
    return "visible in exchange group " + a + " only";
  }
  function emptyRow(tbody, cols, text) {
    tbody.append(h("tr", {}, h("td", { class: "empty", colspan: cols }, text)));
  }
  function badge(text, cls, title) { return h("span", { class: "badge " + (cls || ""), title }, text); }
  function kindBadge(kind) { return badge(kind, "kind-" + kind, kindHelp[kind] || kind); }
  const kindHelp = {
    node: "this process",
    registry: "holds every binding and routes envelopes",
    supervisor: "the parent of the services",
    exchange: "owns the TCP links of one exchange group",
    connection: "one TCP link to another process",
    service: "a service: handlers run one at a time",
    actor: "a plain actor a service spawned",
  };

  // --- sorting: a click on a column's header sorts its table's rows by
  // it (numbers as numbers), again the other way; the order holds over
  // refreshes, which re-sort what they draw. ---

  const sortBy = new Map(); // table id → { col, dir }
  function sortTable(table) {
    const s = sortBy.get(table.id);
    if (!s) return;
    const tbody = table.tBodies[0];
    const rows = [...tbody.rows].filter(r => !r.querySelector("td.empty"));
    const key = r => {
      const t = (r.cells[s.col] || {}).textContent || "";
      const n = parseFloat(t.replace(/[, ]/g, ""));
      return isNaN(n) ? t.toLowerCase() : n;
    };
    const before = rows.slice();
    rows.sort((a, b) => { const x = key(a), y = key(b); return (x < y ? -1 : x > y ? 1 : 0) * s.dir; });
    // Moving rows is a change the observer below sees: only when needed.
    if (rows.some((r, i) => r !== before[i])) tbody.append(...rows);
    [...table.tHead.rows[0].cells].forEach((th, i) => th.setAttribute("aria-sort", i === s.col ? (s.dir > 0 ? "ascending" : "descending") : "none"));
  }
  function makeSortable() {
    for (const table of document.querySelectorAll("table.data")) {
      if (!table.tHead || !table.tHead.rows.length) continue;
      [...table.tHead.rows[0].cells].forEach((th, i) => {
        th.classList.add("sortable");
        th.title = "sort by this column";
        th.addEventListener("click", () => {
          const s = sortBy.get(table.id);
          sortBy.set(table.id, { col: i, dir: s && s.col === i ? -s.dir : 1 });
          sortTable(table);
        });
      });
      new MutationObserver(() => sortTable(table)).observe(table.tBodies[0], { childList: true });
    }
  }

  // --- scheduling: targeted refreshes, debounced ---

  const refreshers = {
    node: refreshNode, tree: refreshTree, services: refreshServices, connections: refreshConnections,
    members: refreshMembers, subs: refreshSubs, cluster: refreshCluster,
  };
  const timers = {};
  function schedule(...names) {
    for (const n of names) {
      if (timers[n]) continue;
      timers[n] = setTimeout(() => {
        timers[n] = null;
        refreshers[n]().catch(e => showError(n + ": " + e.message));
      }, 120);
    }
  }

  // --- node ---

  async function refreshNode() {
    const n = await api("api/node");
    state.node = n;
    state.nodeFetched = Date.now();
    $("node-name").textContent = n.name;
    document.title = n.name + " · netsvc console";
    const groups = (n.groups || []).map(g => g === "" ? '""' : g).join(", ") || "none";
    $("node-sub").textContent = "process " + n.process + " · exchange group " + groups;
    renderFacts();
    showError("");
  }

  function renderFacts() {
    const n = state.node;
    if (!n) return;
    const up = (n.uptime_seconds || 0) + (Date.now() - state.nodeFetched) / 1000;
    const facts = [
      ["listen", n.listen || "—"],
      ["gossip", n.gossip || "off"],
      ["console", n.console],
      ["version", n.version],
      ["uptime", fmtDuration(up)],
      ["links", n.links],
      ["services", (n.local_services || 0) + " local / " + (n.bindings || 0) + " seen"],
    ];
    const dl = $("node-facts");
    dl.replaceChildren(...facts.map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", { dataset: { fact: k } }, String(v)))));
  }

  // --- the actor tree ---

  function isOpen(t) { return isOpenPid(t.pid, t.kind); }

  // The tree is kept in place between refreshes: each actor keeps its
  // element (keyed by pid), so a refresh only changes text, and what the
  // user is about to click stays where it is.
  const treeEls = new Map(); // pid → {li, toggle, badge, name, pid, counters, detail, kids}

  async function refreshTree() {
    const root = await api("api/tree");
    const seen = new Set();
    const first = treeEls.size === 0;
    const li = syncTreeNode(root, seen, first).li;
    const ul = $("tree");
    if (ul.firstChild !== li || ul.children.length !== 1) ul.replaceChildren(li);
    for (const pid of [...treeEls.keys()]) if (!seen.has(pid)) treeEls.delete(pid);
    $("tree-count").textContent = "(" + (seen.size - 1) + " actors)";
  }

  function syncTreeNode(t, seen, first) {
    seen.add(t.pid);
    let el = treeEls.get(t.pid);
    if (!el || el.kind !== t.kind) {
      el = createTreeNode(t);
      if (!first) el.li.classList.add("fresh");
      treeEls.set(t.pid, el);
    }
    const kids = (t.children || []).map(k => syncTreeNode(k, seen, first).li);
    const open = isOpen(t);
    el.hasKids = kids.length > 0;
    el.toggle.hidden = !el.hasKids;
    el.spacer.hidden = el.hasKids;
    el.toggle.textContent = open ? "▾" : "▸";
    el.toggle.title = open ? "collapse" : "expand";
    el.toggle.setAttribute("aria-expanded", open ? "true" : "false");
    el.kids.hidden = !open || !el.hasKids;
    el.name.textContent = t.name;
    el.li.dataset.name = t.name;
    const counters = [];
    if (t.messages !== undefined) counters.push(h("span", {}, h("b", {}, fmtInt(t.messages)), " msgs"));
    if (t.mailbox !== undefined) counters.push(h("span", {}, "mailbox ", h("b", {}, fmtInt(t.mailbox))));
    if (kids.length) counters.push(h("span", {}, kids.length + (kids.length === 1 ? " child" : " children")));
    el.counters.replaceChildren(...counters.flatMap((c, i) => (i ? [" · ", c] : [c])));
    el.pid.hidden = t.pid === t.name;
    const detail = detailLine(t);
    el.detail.replaceChildren(el.counters, ...(detail ? detail.childNodes : []));
    const current = el.kids.children;
    if (current.length !== kids.length || kids.some((k, i) => current[i] !== k)) el.kids.replaceChildren(...kids);
    return el;
  }

  function createTreeNode(t) {
    const el = { kind: t.kind };
    el.toggle = h("button", {
      type: "button", class: "toggle",
      onclick: () => {
        const nowOpen = !isOpenPid(t.pid, t.kind);
        state.expanded.set(t.pid, nowOpen);
        el.toggle.textContent = nowOpen ? "▾" : "▸";
        el.toggle.title = nowOpen ? "collapse" : "expand";
        el.toggle.setAttribute("aria-expanded", nowOpen ? "true" : "false");
        el.kids.hidden = !nowOpen || !el.hasKids;
      },
    });
    el.spacer = h("span", { class: "spacer" });
    el.name = h("span", { class: "name" });
    el.pid = h("span", { class: "pid", title: "actor id" }, t.pid);
    el.counters = h("span", { class: "counters" });
    el.detail = h("div", { class: "detail" });
    el.kids = h("ul", { class: "children" });
    el.li = h("li", { class: "tnode kind-" + t.kind, dataset: { pid: t.pid, kind: t.kind, name: t.name } },
      h("div", { class: "row" }, el.toggle, el.spacer, kindBadge(t.kind), el.name, el.pid),
      el.detail, el.kids);
    return el;
  }

  function isOpenPid(pid, kind) {
    if (state.expanded.has(pid)) return state.expanded.get(pid);
    return OPEN_BY_DEFAULT.has(kind);
  }

  // detailLine shows what matters of each kind.
  function detailLine(t) {
    const d = t.detail || {};
    const parts = [];
    const add = (k, v) => { if (v !== undefined && v !== null && v !== "") parts.push(h("span", {}, k + " ", h("b", {}, String(v)))); };
    switch (t.kind) {
      case "node":
        add("process", d.process); add("listen", d.listen);
        break;
      case "exchange":
        add("group", d.group === "" ? '""' : d.group); add("role", d.role); add("listen", d.listen); add("links", d.links);
        break;
      case "connection":
        add("peer", d.peer); add("state", d.state); add("remote", d.remote);
        add("in", fmtInt(d.frames_in)); add("out", fmtInt(d.frames_out));
        if (d.dropped) add("drops", d.dropped);
        break;
      case "service":
        add("address", d.address);
        if (d.audience !== undefined) add("audience", audienceText(d.audience));
        if (d.groups && d.groups.length) add("groups", d.groups.join(", "));
        if (d.listed === false) parts.push(h("span", { class: "note" }, "unlisted: a watcher or caller (each open console page has one)"));
        if (d.restarts) add("restarts", d.restarts);
        if (d.serving) add("serving", d.serving + (d.deadline_in_s !== undefined ? " (its caller waits " + d.deadline_in_s + " s more)" : ""));
        if (d.stuck) add("stuck for", d.busy_for_s + " s");
        break;
      default:
        for (const [k, v] of Object.entries(d)) if (typeof v !== "object") add(k, v);
    }
    if (t.since && t.kind !== "node") add("up", fmtAge(t.since));
    return parts.length ? h("div", { class: "detail" }, parts) : null;
  }

  function setAll(open) {
    document.querySelectorAll("#tree li.tnode").forEach(li => state.expanded.set(li.dataset.pid, open));
    schedule("tree");
  }

  // --- services ---

  async function refreshServices() {
    const list = await api("api/services");
    // Calls per second of local services, between this read and the last.
    const now = Date.now(), prev = state.serviceCalls || new Map();
    const next = new Map();
    for (const s of list) {
      if (s.calls === undefined) continue;
      next.set(s.address, { n: s.calls, at: now });
      const p = prev.get(s.address);
      s.rate = p && now > p.at ? (s.calls - p.n) * 1000 / (now - p.at) : null;
    }
    state.serviceCalls = next;
    list.sort((a, b) => a.name.localeCompare(b.name) || a.node.localeCompare(b.node) || a.address.localeCompare(b.address));
    const tbody = $("services").tBodies[0];
    tbody.replaceChildren();
    if (!list.length) emptyRow(tbody, 9, "no services yet");
    for (const s of list) {
      const where = s.local ? badge("local", "ok") : badge("remote · " + s.hops + (s.hops === 1 ? " hop" : " hops"), "plain");
      tbody.append(h("tr", { dataset: { service: s.name, address: s.address } },
        h("td", { class: "name" }, h("b", {}, s.name || "(anonymous)")),
        h("td", { class: "mono addr", title: "process " + s.process }, s.address),
        h("td", { class: "mono", title: audienceTitle(s.audience) }, audienceText(s.audience)),
        h("td", {}, (s.groups || []).map(g => h("span", { class: "chip" }, g))),
        h("td", {}, s.node),
        h("td", {}, where),
        h("td", { class: "num", title: s.calls !== undefined ? fmtInt(s.calls) + " calls served" : "" }, s.rate === null || s.rate === undefined ? (s.calls !== undefined ? "…" : "") : fmtRate(s.rate)),
        h("td", { class: "mono", title: s.exchange_group !== undefined ? "exchange group " + audienceText(s.exchange_group) : "" }, s.link || ""),
        h("td", {}, h("button", { type: "button", title: "call this service", onclick: () => prefillCall(s.name) }, "call…"))));
    }
    $("services-count").textContent = "(" + list.length + ")";
    const names = [...new Set(list.map(s => s.name).filter(Boolean))];
    $("service-names").replaceChildren(...names.map(n => h("option", { value: n })));
  }

  function prefillCall(name) {
    $("call-service").value = name;
    $("call-method").focus();
    $("call-section").scrollIntoView({ behavior: "smooth", block: "nearest" });
  }

  // --- the gateway form ---

  async function doCall(ev) {
    ev.preventDefault();
    const svc = $("call-service").value.trim(), method = $("call-method").value.trim();
    const args = $("call-args").value.trim() || "[]", timeout = $("call-timeout").value.trim();
    const out = $("call-result");
    out.hidden = false;
    out.className = "result";
    out.textContent = "calling " + svc + "." + method + "…";
    const url = "rpc/" + encodeURIComponent(svc) + "/" + encodeURIComponent(method) + (timeout ? "?timeout=" + encodeURIComponent(timeout) : "");
    const started = performance.now();
    try {
      const res = await api(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: args });
      out.className = "result ok";
      out.textContent = JSON.stringify(res, null, 2) + "\n\n(" + Math.round(performance.now() - started) + " ms)";
    } catch (e) {
      out.className = "result bad";
      const b = e.body || {};
      out.textContent = b.code !== undefined
        ? "failure " + b.code + " " + b.description + (b.details ? ": " + b.details : "") + "\norigin " + (b.origin || "?") + " · HTTP " + e.status
        : e.message;
    }
    schedule("tree", "subs");
  }

  // --- links ---

  async function refreshConnections() {
    const c = await api("api/connections");
    const t = Date.parse(c.time) || Date.now();
    const live = new Set();
    for (const l of c.links) {
      live.add(l.id);
      const prev = state.linkPrev.get(l.id);
      let rin = 0, rout = 0;
      if (prev && t > prev.t) {
        rin = Math.max(0, (l.messages_in - prev.in) * 1000 / (t - prev.t));
        rout = Math.max(0, (l.messages_out - prev.out) * 1000 / (t - prev.t));
      }
      state.linkPrev.set(l.id, { t, in: l.messages_in, out: l.messages_out });
      if (prev && t > prev.t) {
        const hist = state.linkHist.get(l.id) || [];
        hist.push({ in: rin, out: rout });
        while (hist.length > HISTORY) hist.shift();
        state.linkHist.set(l.id, hist);
      }
    }
    for (const id of [...state.linkPrev.keys()]) if (!live.has(id)) { state.linkPrev.delete(id); state.linkHist.delete(id); }

    const tbody = $("links").tBodies[0];
    tbody.replaceChildren();
    if (!c.links.length) emptyRow(tbody, 8, "no links: start a client or another node with --connect");
    for (const l of c.links) {
      const hist = state.linkHist.get(l.id) || [];
      const last = hist[hist.length - 1] || { in: 0, out: 0 };
      const canvas = h("canvas", { width: 192, height: 56, "aria-label": "message rate of " + l.id });
      const stateCls = l.state === "active" ? "ok" : l.state === "closed" ? "bad" : "warn";
      tbody.append(h("tr", { dataset: { link: l.id } },
        h("td", { class: "mono nowrap" }, l.id, h("br"),
          h("span", { class: "muted", title: l.direction === "out" ? "this node dialled" : "the peer dialled" }, l.direction === "out" ? "→ out" : "← in")),
        h("td", {}, badge(l.state + (l.state === "active" && !l.synced ? " (syncing)" : ""), stateCls), h("br"),
          h("span", { class: "muted nowrap", title: "up for" }, fmtAge(l.since))),
        h("td", { title: "process " + l.remote_process + " at " + l.remote_address },
          h("b", {}, l.remote_node || "?"), h("br"),
          h("span", { class: "muted mono" }, l.role + " · " + l.remote_address + " · group " + audienceText(l.group))),
        h("td", { class: "num" }, fmtInt(l.messages_in), h("br"), fmtInt(l.messages_out)),
        h("td", {}, h("div", { class: "rate" }, canvas,
          h("div", { class: "nums" }, h("span", { class: "in-key" }, "in " + fmtRate(last.in)), h("br"), h("span", { class: "out-key" }, "out " + fmtRate(last.out))))),
        h("td", { class: "num nowrap" }, fmtBytes(l.bytes_in), h("br"), fmtBytes(l.bytes_out)),
        h("td", { class: "num" + (l.drops || l.refused ? " bad" : "") }, fmtInt(l.drops), h("br"), fmtInt(l.refused)),
        h("td", { class: "num nowrap" }, fmtBytes(l.queued_bytes))));
      drawSparkline(canvas, hist);
    }
    $("links-count").textContent = "(" + c.links.length + ")";

    const tt = $("targets").tBodies[0];
    tt.replaceChildren();
    if (!c.targets.length) emptyRow(tt, 5, "none: this node dials no one");
    for (const x of c.targets) {
      const cls = x.state === "linked" ? "ok" : x.state === "rejected" ? "bad" : "warn";
      tt.append(h("tr", {}, h("td", { class: "mono" }, audienceText(x.group)), h("td", { class: "mono" }, x.address),
        h("td", {}, badge(x.state, cls)), h("td", { class: "num" }, x.attempts), h("td", { class: "muted" }, x.last_error || "")));
    }
  }

  function drawSparkline(canvas, hist) {
    const ctx = canvas.getContext("2d");
    const w = canvas.width, hgt = canvas.height, pad = 3;
    ctx.clearRect(0, 0, w, hgt);
    let max = 1;
    for (const p of hist) max = Math.max(max, p.in, p.out);
    const x = i => w - pad - (hist.length - 1 - i) * ((w - 2 * pad) / (HISTORY - 1));
    const y = v => hgt - pad - (v / max) * (hgt - 2 * pad);
    ctx.strokeStyle = "#e5e7eb";
    ctx.lineWidth = 1;
    ctx.beginPath(); ctx.moveTo(0, hgt - pad + 0.5); ctx.lineTo(w, hgt - pad + 0.5); ctx.stroke();
    for (const [key, color] of [["in", "#2563eb"], ["out", "#e8590c"]]) {
      if (hist.length < 2) continue;
      ctx.strokeStyle = color;
      ctx.lineWidth = 2;
      ctx.beginPath();
      hist.forEach((p, i) => (i ? ctx.lineTo(x(i), y(p[key])) : ctx.moveTo(x(i), y(p[key]))));
      ctx.stroke();
    }
  }

  // --- members ---

  // stateBadge colours a member's state.
  function stateBadge(v) {
    const t = String(v === undefined ? "" : v);
    return badge(t, /alive|up|active/i.test(t) ? "ok" : /dead|left|failed/i.test(t) ? "bad" : "warn");
  }
  function consoleLink(addr) {
    // Another node's console, opened in a new tab (nothing is fetched
    // from it here: /api/cluster does that server-side).
    return addr ? h("a", { href: location.protocol + "//" + addr + "/", target: "_blank", rel: "noopener" }, addr) : "";
  }

  async function refreshMembers() {
    const list = await api("api/members");
    const rows = Array.isArray(list) ? list.filter(m => m && typeof m === "object") : [];
    const tbody = $("members").tBodies[0];
    tbody.replaceChildren();
    if (!rows.length) emptyRow(tbody, 7, "no cluster members: gossip is off, or this node is alone");
    rows.sort((a, b) => String((a.meta || {}).node || a.name).localeCompare(String((b.meta || {}).node || b.name)));
    for (const m of rows) {
      const meta = m.meta || {};
      tbody.append(h("tr", { "data-member": meta.node || m.name },
        h("td", { title: m.name || "" }, meta.node || m.name || ""),
        h("td", {}, stateBadge(m.state)),
        h("td", {}, meta.exchange ? meta.exchange + (meta.group ? " (" + meta.group + ")" : "") : ""),
        h("td", { class: "num" }, m.rtt_ms ? m.rtt_ms.toFixed(2) + " ms" : ""),
        h("td", { class: "num" }, m.ack_age_ms ? (m.ack_age_ms / 1000).toFixed(1) + " s ago" : ""),
        h("td", {}, meta.version || ""),
        h("td", {}, consoleLink(meta.console))));
    }
    $("members-count").textContent = "(" + rows.length + ")";
  }

  // --- the cluster: every member's services and actor tree ---

  function treeList(t) {
    if (!t || typeof t !== "object") return "";
    const kids = (t.children || []).map(treeList);
    return h("li", {}, h("span", {}, t.name + " "), kindBadge(t.kind), kids.length ? h("ul", {}, kids) : "");
  }

  async function refreshCluster() {
    const nodes = await api("api/cluster");
    const tbody = $("cluster").tBodies[0];
    const details = $("cluster-nodes");
    tbody.replaceChildren();
    details.replaceChildren();
    const list = Array.isArray(nodes) ? nodes : [];
    for (const n of list) {
      const services = Array.isArray(n.services) ? n.services : [];
      let actors = 0;
      const count = t => { if (t && typeof t === "object") { actors++; (t.children || []).forEach(count); } };
      count(n.tree);
      tbody.append(h("tr", { "data-node": n.node },
        h("td", {}, n.node + (n.self ? " (this node)" : "")),
        h("td", {}, stateBadge(n.state)),
        h("td", { class: "num" }, n.services ? fmtInt(services.length) : ""),
        h("td", { class: "num" }, n.tree ? fmtInt(actors) : ""),
        h("td", {}, consoleLink(n.console)),
        h("td", { class: "muted" }, n.error || "")));
      if (!n.tree && !n.services) continue;
      const names = services.map(b => b.name + (b.local ? "" : "@" + (b.node || "?"))).filter(x => x);
      details.append(h("details", { "data-node": n.node },
        h("summary", {}, n.node + ": " + services.length + " services, " + actors + " actors"),
        h("p", { class: "help" }, names.length ? names.join(", ") : "no services"),
        h("ul", { class: "cluster-tree" }, treeList(n.tree))));
    }
    $("cluster-count").textContent = "(" + list.length + ")";
  }

  // --- subscriptions ---

  async function refreshSubs() {
    const s = await api("api/subscriptions");
    const subs = s.subscriptions || [], pubs = s.subscribers || [], watches = s.watches || [];
    const who = (name, addr) => [h("b", {}, name || "(anonymous)"), " ", h("span", { class: "muted mono" }, addr)];
    let tb = $("subscriptions").tBodies[0];
    tb.replaceChildren();
    if (!subs.length) emptyRow(tb, 4, "no report subscriptions");
    for (const x of subs) {
      tb.append(h("tr", {}, h("td", {}, who(x.subscriber_name, x.subscriber)), h("td", {}, x.target),
        h("td", { class: "mono" }, x.pattern), h("td", { class: "mono" }, (x.publishers || []).join(", ") || "none yet")));
    }
    tb = $("subscribers").tBodies[0];
    tb.replaceChildren();
    if (!pubs.length) emptyRow(tb, 3, "no subscribers to local publishers");
    for (const x of pubs) {
      tb.append(h("tr", {}, h("td", {}, who(x.publisher_name, x.publisher)), h("td", { class: "mono" }, x.subscriber),
        h("td", { class: "mono" }, (x.patterns || []).join(", "))));
    }
    tb = $("watches").tBodies[0];
    tb.replaceChildren();
    if (!watches.length) emptyRow(tb, 2, "no registry watches");
    for (const x of watches) {
      tb.append(h("tr", {}, h("td", {}, who(x.watcher_name, x.watcher)), h("td", {}, x.target)));
    }
    $("subs-count").textContent = "(" + subs.length + ")";
    $("pubs-count").textContent = "(" + pubs.length + ")";
    $("watches-count").textContent = "(" + watches.length + ")";
  }

  // --- live events ---

  function logEvent(kind, text, cls) {
    const ol = $("events");
    const now = new Date();
    ol.prepend(h("li", {}, h("span", { class: "t" }, now.toLocaleTimeString()), badge(kind, cls || "plain"), h("span", {}, text)));
    while (ol.children.length > 100) ol.lastChild.remove();
  }

  function connectEvents() {
    const live = $("live");
    const es = new EventSource("api/events"); // the token rides in the console's cookie, never in a URL
    es.onopen = () => {
      live.className = "live on";
      live.textContent = "live";
      schedule("node", "tree", "services", "connections", "members", "subs", "cluster");
    };
    es.onerror = () => {
      live.className = "live off";
      live.textContent = "reconnecting…";
    };
    es.addEventListener("registry", e => {
      const ev = JSON.parse(e.data);
      const b = ev.binding || {};
      const cls = ev.kind === "withdrawn" || ev.kind === "left" ? "bad" : "ok";
      logEvent(ev.kind, (b.name || "(anonymous)") + " " + b.address + " on " + b.node + (b.local ? " (local)" : "") + (ev.group ? " · group " + ev.group : ""), cls);
      schedule("services", "tree", "node", "subs");
    });
    es.addEventListener("link", e => {
      const ev = JSON.parse(e.data);
      const l = ev.link || {};
      logEvent("link " + ev.state, l.id + " to " + (l.remote_node || "?") + " (" + l.remote_address + ")" + (ev.reason ? ": " + ev.reason : ""), ev.state === "down" ? "bad" : "ok");
      schedule("connections", "tree", "services", "node");
    });
    es.addEventListener("member", e => {
      let text = e.data;
      try { const m = JSON.parse(e.data); text = m && typeof m === "object" ? Object.values(m).filter(v => typeof v !== "object").join(" ") : String(m); } catch (err) { /* raw */ }
      logEvent("member", text, "plain");
      schedule("members", "node");
    });
  }

  // --- start ---

  function start() {
    $("legend").replaceChildren(...KINDS.map(kindBadge));
    $("expand-all").addEventListener("click", () => setAll(true));
    $("collapse-all").addEventListener("click", () => setAll(false));
    $("call-form").addEventListener("submit", doCall);
    makeSortable();
    schedule("node", "tree", "services", "connections", "members", "subs", "cluster");
    connectEvents();
    setInterval(() => schedule("connections"), 1000);
    setInterval(() => schedule("tree", "subs", "node"), 3000);
    setInterval(() => schedule("members", "services", "cluster"), 10000);
    setInterval(renderFacts, 1000);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
