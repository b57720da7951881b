// The operator console: the admin API (/admin/...) in a page. Served by the host on its admin
// listener at /console. The operator's name is kept in localStorage (every change is audited
// under it); the admin token, when the host has one, only in sessionStorage.

const $ = (selector) => document.querySelector(selector);
const who = $("#who");
who.operator.value = localStorage.getItem("console.operator") ?? "";
who.token.value = sessionStorage.getItem("console.token") ?? "";
who.addEventListener("input", () => {
  localStorage.setItem("console.operator", who.operator.value.trim());
  sessionStorage.setItem("console.token", who.token.value.trim());
});

function say(text, kind = "done") {
  $("#message").textContent = text;
  $("#message").className = kind;
}

/** Calls the admin API; resolves to the JSON reply, rejects with its `msg`. */
async function api(method, path, body) {
  const headers = {};
  const token = who.token.value.trim();
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const reply = await response.json().catch(() => ({ ret: -6, msg: `HTTP ${response.status}` }));
  if (reply.ret !== 0) throw new Error(reply.msg ?? `failed (ret ${reply.ret})`);
  return reply;
}

/** Runs `action`, reporting its failure in words. */
async function act(action) {
  try {
    await action();
  } catch (error) {
    say(error.message, "error");
  }
}

function operator() {
  const name = who.operator.value.trim();
  if (!name) throw new Error("Enter your name as operator first: every change is audited under it.");
  return name;
}

function cell(row, text) {
  const td = row.insertCell();
  td.textContent = text;
  return td;
}

async function loadModules() {
  const {
    host_id: hostId,
    online,
    modules,
    draining,
    not_unloaded: leaked,
    data_checks: dataChecks = [],
  } = await api("GET", "/admin/modules");
  $("#online").textContent =
    `${hostId}: ${online.players} player${online.players === 1 ? "" : "s"} online ` +
    `(${online.sockets} socket${online.sockets === 1 ? "" : "s"} open)`;
  const body = $("#modules tbody");
  body.replaceChildren();
  for (const m of modules) {
    const row = body.insertRow();
    row.dataset.module = m.name;
    cell(row, m.name);
    cell(row, m.prefix);
    cell(row, m.version);
    cell(row, m.generation);
    cell(row, m.sha256.slice(0, 12)).title = m.sha256;
    cell(row, m.in_flight);
    cell(row, m.calls ?? "");
    cell(row, m.failures ?? "");
    // The refusals clients may get, with the commands they may get them from in the title.
    const refusals = cell(row, (m.refusals ?? []).map((r) => `${r.code} ${r.name}`).join(", "));
    refusals.className = "refusals";
    refusals.title = `commands ${m.commands.join(", ")}`;
    // The saved-data schema, and the newer version kept to downgrade data after a step back.
    const schema = cell(
      row,
      m.migrator ? `${m.schema} (migrator ${m.migrator.version}, schema ${m.migrator.schema})` : m.schema,
    );
    schema.className = "schema";
    // The data tables this version read: their hash, the files in the title.
    const tables = cell(row, m.tables ? m.tables.sha256.slice(0, 12) : "none");
    tables.className = "tables";
    if (m.tables) tables.title = `${m.name}.tables/: ${m.tables.files.join(", ")}`;
    const buttons = row.insertCell();
    for (const action of ["reload", "rollback"]) {
      const button = document.createElement("button");
      button.textContent = action;
      button.addEventListener("click", () =>
        act(async () => {
          // A swap between schemas checks the stored data first: show its progress meanwhile.
          const progress = setInterval(() => loadModules().catch(() => {}), 500);
          try {
            const reply = await api("POST", `/admin/modules/${m.name}/${action}`);
            say(`${m.name}: ${action} ${reply.change ?? "done"}`);
          } finally {
            clearInterval(progress);
          }
          await loadModules();
        }),
      );
      buttons.append(button, " ");
    }
  }
  $("#draining").textContent =
    `Draining: ${draining.length || "none"} · not unloaded: ${leaked.length || "none"}`;
  $("#data-checks").replaceChildren(
    ...dataChecks.map((check) => {
      const item = document.createElement("li");
      item.textContent = describeCheck(check);
      item.className = check.state;
      return item;
    }),
  );
  const { events } = await api("GET", "/admin/events");
  $("#events").replaceChildren(
    ...events.slice(-20).reverse().map((event) => {
      const item = document.createElement("li");
      item.textContent = JSON.stringify(event);
      return item;
    }),
  );
}

/** One line on a module's last saved-data check. */
function describeCheck(c) {
  const sample = c.sampled ? ` (a sample of ${c.players} of ${c.stored_players})` : "";
  const failure = c.first_failure
    ? `; ${c.failed} failed, e.g. ${c.first_failure.player_id || "-"}: ${c.first_failure.reason}`
    : "";
  return (
    `${c.module} ${c.version}, schema ${c.from_schema} → ${c.to_schema}: ${c.state}, ` +
    `${c.checked} of ${c.players} players checked${sample}${failure}`
  );
}

/** A release's identity, short: its library's sha256 (and its tables'), 12 digits each. */
const short = (release) =>
  release ? release.split("+tables:").map((part) => part.slice(0, 12)).join("+") : "—";

async function loadFleet() {
  const { source, this_host: thisHost, modules, hosts } = await api("GET", "/admin/fleet");
  $("#fleet-source").textContent =
    source === "database"
      ? `This host (${thisHost}) runs the releases published into its database ` +
        "(game-host publish); every host on it follows."
      : `This host (${thisHost}) loads the libraries in its plugins directory ` +
        '(plugins.source = "directory"): nothing is published to a fleet.';
  const body = $("#fleet-modules tbody");
  body.replaceChildren();
  for (const m of modules) {
    const row = body.insertRow();
    row.dataset.module = m.module;
    cell(row, m.module);
    cell(row, short(m.desired)).title = m.desired;
    const canary = cell(row, m.canary ? `${short(m.canary)} · ${m.canary_percent}%` : "none");
    canary.className = "canary";
    if (m.canary) canary.title = m.canary;
    cell(row, short(m.previous)).title = m.previous ?? "";
    // Each host: serving the desired release, behind (not yet), or refused with its reason.
    const states = cell(
      row,
      m.hosts
        .map((h) => `${h.host_id}: ${h.state}${h.canary_state ? ` · canary ${h.canary_state}` : ""}`)
        .join(", "),
    );
    states.className = "states";
    states.title = m.hosts
      .flatMap((h) => [h.refused, h.canary_refused].filter(Boolean).map((why) => `${h.host_id}: ${why}`))
      .join("\n");
    const buttons = row.insertCell();
    const actions = m.canary ? ["promote", "rollback"] : m.previous ? ["rollback"] : [];
    for (const action of actions) {
      const button = document.createElement("button");
      button.textContent = action;
      button.addEventListener("click", () =>
        act(async () => {
          const reason = prompt(`Why ${action} ${m.module} on every host? (kept in the audit log)`);
          if (!reason) return;
          await api("POST", `/admin/fleet/${m.module}/${action}`, { operator: operator(), reason });
          say(`${m.module}: ${action} sent to the fleet; the hosts follow within a second.`);
          await Promise.all([loadFleet(), loadAudit()]);
        }),
      );
      buttons.append(button, " ");
    }
  }
  const hostsBody = $("#fleet-hosts tbody");
  hostsBody.replaceChildren();
  for (const h of hosts) {
    const row = hostsBody.insertRow();
    row.dataset.host = h.host_id;
    cell(row, h.host_id);
    cell(row, h.address);
    cell(row, h.binary_version);
    cell(row, `${h.seen_secs_ago} s ago`);
    cell(row, h.players_online);
    cell(row, h.modules.map((m) => `${m.module} ${short(m.serving)}`).join(", "));
  }
}

let current = null; // the player shown

async function showPlayer(playerId) {
  const { player: details } = await api("GET", `/admin/players/${playerId}`);
  current = details.player.player_id;
  const p = details.player;
  $("#player").hidden = false;
  $("#player-title").textContent = `${p.name} · account ${details.account} · ${p.player_id}`;
  $("#player-gold").textContent = p.gold;
  $("#player-diamond").textContent = p.diamond;
  $("#player-items").textContent =
    Object.entries(p.items).map(([id, n]) => `${id} × ${n}`).join(", ") || "none";
  $("#player-modules").textContent = JSON.stringify(details.modules, null, 2);
}

async function loadAudit() {
  const { entries } = await api("GET", "/admin/audit?limit=50");
  const body = $("#audit tbody");
  body.replaceChildren();
  for (const e of entries) {
    const row = body.insertRow();
    cell(row, e.id);
    cell(row, new Date(e.at_ms).toISOString().replace("T", " ").slice(0, 19));
    cell(row, e.operator);
    cell(row, e.action);
    cell(row, e.player_id.slice(0, 8)).title = e.player_id;
    cell(row, e.reason);
    cell(row, JSON.stringify(e.before));
    cell(row, JSON.stringify(e.after));
  }
}

$("#search").addEventListener("submit", (event) => {
  event.preventDefault();
  act(async () => {
    const account = event.target.account.value.trim();
    const { players } = await api("GET", `/admin/players?account=${encodeURIComponent(account)}`);
    if (players.length === 0) {
      $("#player").hidden = true;
      throw new Error(`No player has the account ${account}.`);
    }
    await showPlayer(players[0].player.player_id);
    say(`Found ${account}.`);
  });
});

$("#grant").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = event.target;
  act(async () => {
    let items = {};
    if (form.items.value.trim()) {
      try {
        items = JSON.parse(form.items.value);
      } catch {
        throw new Error('Items must be JSON such as {"potion": 2}.');
      }
    }
    const reply = await api("POST", `/admin/players/${current}/grant`, {
      operator: operator(),
      reason: form.reason.value,
      gold: Number(form.gold.value) || 0,
      diamond: Number(form.diamond.value) || 0,
      items,
    });
    say(`Granted (audit #${reply.audit.id}).`);
    form.reason.value = "";
    await Promise.all([showPlayer(current), loadAudit()]);
  });
});

$("#revoke").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = event.target;
  act(async () => {
    const reply = await api("POST", `/admin/players/${current}/revoke`, {
      operator: operator(),
      reason: form.reason.value,
    });
    say(`Revoked ${reply.audit.before.sessions} session(s) (audit #${reply.audit.id}).`);
    form.reason.value = "";
    await loadAudit();
  });
});

act(async () => {
  await Promise.all([loadModules(), loadFleet(), loadAudit()]);
});
// The fleet moves by itself (other hosts, the safety net): keep its panel current.
setInterval(() => loadFleet().catch(() => {}), 2000);
