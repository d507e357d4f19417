// The demo editor: wires the DOM to the wasm sync engine (edits), and to the
// presence and cursor channels through the official phoenix client.
import { Socket, Presence } from "phoenix";
import init, { SyncEngine } from "../../priv/static/wasm/tandem_wasm.js";
import { ProjectSync } from "./sync.js";
import { signIn } from "./session.js";
import { Canvas } from "./canvas.js";

const $ = (id) => document.getElementById(id);

async function start() {
  const params = new URLSearchParams(location.search);
  const project = params.get("project") || "demo";
  $("project").value = project;
  $("picker").addEventListener("submit", (e) => {
    e.preventDefault();
    params.set("project", $("project").value.trim() || "demo");
    location.search = params.toString();
  });

  await init({ module_or_path: "/wasm/tandem_wasm_bg.wasm" });
  performance.mark("tandem:wasm-ready");
  const { token } = await signIn(params);
  const clientId = crypto.randomUUID();
  const engine = new SyncEngine(clientId);
  const socket = new Socket("/socket", { params: { token }, reconnectAfterMs: (n) => [100, 250, 500, 1000][n - 1] || 2000 });

  let presenceList = [];
  const selection = new Set();
  const canvas = new Canvas($("canvas"), {
    select(id, additive) {
      if (!additive) selection.clear();
      if (id) selection.has(id) && additive ? selection.delete(id) : selection.add(id);
      presenceChannel.push("update", { selection: [...selection] });
      render();
    },
    translate: (id, dx, dy) => sync.sent(engine.translate(id, dx, dy)),
    resize: (id, w, h) => sync.sent(engine.set_attrs(id, JSON.stringify({ w, h }))),
    pointer: (x, y) => cursorChannel.push("move", { x, y }),
  });

  const render = () => {
    const layers = JSON.parse(engine.layers());
    for (const id of [...selection]) if (!layers.some((l) => l.id === id)) selection.delete(id);
    const others = presenceList.filter((p) => p.client_id !== clientId);
    canvas.render(layers, selection, others);
    $("layer-list").replaceChildren(
      ...layers.map((l) => {
        const li = document.createElement("li");
        li.textContent = `${"  ".repeat(l.depth)}${l.name}`;
        li.dataset.id = l.id;
        li.classList.toggle("selected", selection.has(l.id));
        li.onclick = (e) => canvas.callbacks.select(l.id, e.shiftKey);
        return li;
      }),
    );
    const pending = engine.pending_count();
    const state = sync.online ? "online" : socket.isConnected() ? "connecting" : "offline";
    $("status").dataset.state = state;
    $("status").textContent = pending ? `${state} · ${pending} unsent` : state;
    $("checksum").textContent = `seq ${engine.seq()} · checksum ${engine.checksum()}`;
    $("undo").disabled = !engine.can_undo();
    $("redo").disabled = !engine.can_redo();
  };

  const sync = new ProjectSync(socket, project, clientId, engine, render);
  const presenceChannel = socket.channel(`presence:${project}`, { client_id: clientId });
  const presence = new Presence(presenceChannel);
  presence.onSync(() => {
    presenceList = presence.list((userId, { metas }) => ({
      user_id: userId,
      name: metas[0].name,
      color: metas[0].color,
      client_id: metas[0].client_id,
      clients: metas.map((m) => m.client_id),
      selection: metas.flatMap((m) => (m.client_id === clientId ? [] : m.selection || [])),
    }));
    $("avatars").replaceChildren(
      ...presenceList.map((p) => {
        const span = document.createElement("span");
        span.className = "avatar";
        span.style.background = p.color;
        span.textContent = p.name;
        span.dataset.user = p.user_id;
        return span;
      }),
    );
    canvas.dropCursorsExcept(new Set(presenceList.flatMap((p) => p.clients)));
    render();
  });
  const cursorChannel = socket.channel(`cursors:${project}`, { client_id: clientId });
  cursorChannel.on("moved", ({ user_id, client_id, x, y }) => {
    const who = presenceList.find((p) => p.user_id === user_id);
    canvas.showCursor(client_id, x, y, who?.name || user_id, who?.color || "#333");
  });

  socket.onOpen(render);
  socket.onClose(render);
  socket.connect();
  sync.join();
  presenceChannel.join().receive("ok", () => presenceChannel.push("update", { selection: [...selection] }));
  cursorChannel.join();

  const selected = () => [...selection];
  const actions = {
    add() {
      const id = crypto.randomUUID();
      const n = JSON.parse(engine.layers()).length + 1;
      const attrs = { name: $("name").value || `Layer ${n}`, color: $("color").value, x: 40 + ((n * 37) % 600), y: 40 + ((n * 53) % 380), w: 140, h: 90 };
      sync.sent(engine.add_layer(id, JSON.stringify(attrs)));
      canvas.callbacks.select(id, false);
    },
    remove: () => selected().forEach((id) => sync.sent(engine.remove(id))),
    group: () => selection.size && canvas.callbacks.select(groupSelected(), false),
    forward: () => selected().forEach((id) => sync.sent(engine.bring_forward(id))),
    backward: () => selected().forEach((id) => sync.sent(engine.send_backward(id))),
    undo: () => sync.sent(engine.undo()),
    redo: () => sync.sent(engine.redo()),
  };
  const groupSelected = () => {
    const id = crypto.randomUUID();
    sync.sent(engine.group(id, JSON.stringify(selected())));
    return id;
  };
  for (const [name, action] of Object.entries(actions)) $(name).onclick = action;
  $("color").onchange = () => selected().forEach((id) => sync.sent(engine.set_attrs(id, JSON.stringify({ color: $("color").value }))));
  // The name field names new layers; Enter renames the selected ones.
  $("name").onkeydown = (e) => {
    if (e.key !== "Enter") return;
    selected().forEach((id) => sync.sent(engine.set_attrs(id, JSON.stringify({ name: $("name").value }))));
  };
  document.addEventListener("keydown", (e) => {
    if (e.target.tagName === "INPUT") return;
    const mod = e.ctrlKey || e.metaKey;
    if (mod && e.key.toLowerCase() === "z") (e.shiftKey ? actions.redo : actions.undo)();
    else if (mod && e.key.toLowerCase() === "y") actions.redo();
    else if (e.key === "Delete" || e.key === "Backspace") actions.remove();
    else return;
    e.preventDefault();
  });

  // For the end-to-end tests and the curious: read-only views plus the
  // transport switch used to simulate going offline.
  window.tandem = {
    engine, clientId, socket,
    layers: () => JSON.parse(engine.layers()),
    checksum: () => engine.checksum(),
    pending: () => engine.pending_count(),
    online: () => sync.online,
    presence: () => presenceList,
    goOffline: () => socket.disconnect(render),
    goOnline: () => socket.connect(),
  };
  render();
}

start().catch((error) => {
  document.getElementById("status").textContent = `error: ${error.message}`;
  console.error(error);
});
