// The demo game: everything a player does goes through the SDK's `call`, and every refusal
// is shown in the module's own words. Copy it as the start of your own H5 client.

import { GameClient } from "../src/index.js";

// The page is served by the game server itself (or by nginx in front of it): same origin. With
// the socket, commands go over it and the host's pushes (gifts, messages) arrive at once.
const game = new GameClient({ socket: true });

const $ = (selector) => document.querySelector(selector);

/** Shows `text` under the game; `kind` is "done" or "error". */
function say(text, kind = "done") {
  const message = $("#message");
  message.textContent = text;
  message.className = kind;
}

/** Words for a failed call: a refusal is the module's message, anything else says so. */
function explain(error) {
  if (error.refused) return error.msg;
  if (error.loggedOut) return "Your session has ended: please log in again.";
  if (error.kind === "network") return "Cannot reach the game server. Check your connection and try again.";
  if (error.kind === "timeout") return "The game server is slow to answer. Try again in a moment.";
  return `The server could not do that (${error.ret}): ${error.msg}`;
}

/** Runs `action` with `button` disabled, and reports what went wrong. */
async function act(button, action) {
  button.disabled = true;
  try {
    await action();
  } catch (error) {
    say(explain(error), "error");
    if (error.loggedOut) show();
  } finally {
    button.disabled = false;
  }
}

function renderPlayer(player) {
  $("#player-name").textContent = `${player.name} (${player.player_id.slice(0, 8)})`;
  $("#gold").textContent = player.gold;
  $("#diamond").textContent = player.diamond;
  renderItems(player.items);
}

function renderItems(items) {
  const list = $("#items");
  list.replaceChildren();
  const entries = Object.entries(items);
  if (entries.length === 0) {
    list.innerHTML = '<li class="hint">None yet.</li>';
    return;
  }
  for (const [id, count] of entries) {
    const item = document.createElement("li");
    item.textContent = `${id} × ${count}`;
    item.dataset.item = id;
    list.append(item);
  }
}

function renderGoods(goods) {
  const body = $("#goods tbody");
  body.replaceChildren();
  for (const good of goods) {
    const row = document.createElement("tr");
    row.dataset.good = good.id;
    row.innerHTML = `<td></td><td></td>
      <td><input type="number" min="1" max="99" value="1" aria-label="count"></td>
      <td><button type="button">Buy</button></td>`;
    row.cells[0].textContent = good.name;
    row.cells[1].textContent = `${good.price} gold`;
    const count = row.querySelector("input");
    const buy = row.querySelector("button");
    buy.addEventListener("click", () =>
      act(buy, async () => {
        const bought = await game.call("1103", { id: good.id, count: Number(count.value) });
        $("#gold").textContent = bought.gold;
        renderItems(bought.items);
        say(`Bought ${count.value} × ${good.name}.`);
      }),
    );
    body.append(row);
  }
}

/** A gift or message from another player, at the top of the inbox; a gift adds to the gold. */
function received({ kind, data }) {
  const inbox = $("#inbox");
  inbox.querySelector(".hint")?.remove();
  const entry = document.createElement("li");
  entry.dataset.kind = kind;
  if (kind === "gift") {
    entry.textContent = `${data.name} (${data.from}) gave you ${data.gold} gold.`;
    $("#gold").textContent = Number($("#gold").textContent) + data.gold;
  } else if (kind === "message") {
    entry.textContent = `${data.name} (${data.from}): ${data.text}`;
  } else {
    entry.textContent = `${kind}: ${JSON.stringify(data)}`;
  }
  inbox.prepend(entry);
}

game.on("push", received);
game.on("open", () => ($("#socket-state").textContent = "(live)"));
game.on("close", () => ($("#socket-state").textContent = "(reconnecting…)"));
game.on("loggedout", () => {
  say("Your session has ended: please log in again.", "error");
  show();
});

/** Shows the login form or the game, whichever the session calls for. */
async function show() {
  const loggedIn = game.loggedIn;
  $("#login").hidden = loggedIn;
  $("#game").hidden = !loggedIn;
  if (!loggedIn) return;
  try {
    const [player, { goods }] = await Promise.all([game.call("1203"), game.call("1101")]);
    renderPlayer(player);
    renderGoods(goods);
  } catch (error) {
    say(explain(error), "error");
    if (error.loggedOut) show();
  }
}

$("#login-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = event.target;
  const account = form.account.value.trim();
  const name = form.name.value.trim() || undefined;
  act(form.querySelector("button"), async () => {
    await game.login(account, { name });
    say(`Welcome, ${name ?? account}.`);
    await show();
  });
});

$("#sign-in").addEventListener("click", (event) =>
  act(event.target, async () => {
    const { gold, streak } = await game.call("1001");
    $("#gold").textContent = gold;
    $("#streak").textContent = `${streak} day${streak === 1 ? "" : "s"}`;
    say("Signed in for today: +100 gold.");
  }),
);

$("#gift-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = event.target;
  const to = form.to.value.trim();
  const gold = Number(form.gold.value);
  act(form.querySelector("button"), async () => {
    const given = await game.call("1301", { to, gold });
    $("#gold").textContent = given.gold;
    say(`Gave ${gold} gold to ${to}.`);
  });
});

$("#message-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = event.target;
  const to = form.to.value.trim();
  act(form.querySelector("button"), async () => {
    await game.call("1303", { to, text: form.text.value });
    form.text.value = "";
    say(`Message sent to ${to}.`);
  });
});

$("#logout").addEventListener("click", (event) =>
  act(event.target, async () => {
    await game.logout();
    say("Logged out.");
    await show();
  }),
);

show();
