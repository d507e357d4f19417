// The canvas: draws layers (in the engine's paint order), other people's
// selections and cursors, and turns drags into one edit each (on release).

export class Canvas {
  constructor(element, callbacks) {
    this.el = element;
    this.callbacks = callbacks;
    this.cursors = new Map();
    element.addEventListener("mousedown", (e) => {
      if (e.target === element) callbacks.select(null, false);
    });
    // At most one pointer message per 30 ms, the latest position last.
    element.addEventListener("mousemove", (e) => {
      const box = element.getBoundingClientRect();
      this.pointerAt = [Math.round(e.clientX - box.left), Math.round(e.clientY - box.top)];
      this.pointerTimer ??= setTimeout(() => {
        this.pointerTimer = null;
        callbacks.pointer(...this.pointerAt);
      }, 30);
    });
  }

  render(layers, selection, others) {
    const nodes = layers.map((layer) => this.layerNode(layer, selection.has(layer.id)));
    const outlines = others.flatMap((person) =>
      person.selection
        .map((id) => layers.find((l) => l.id === id))
        .filter(Boolean)
        .map((layer) => outline(layer, person)),
    );
    this.el.replaceChildren(...nodes, ...outlines, ...this.cursors.values());
  }

  layerNode(layer, selected) {
    const div = document.createElement("div");
    div.className = "layer" + (layer.kind === "group" ? " group" : "") + (selected ? " selected" : "");
    div.dataset.id = layer.id;
    place(div, layer);
    div.style.background = layer.color;
    div.textContent = layer.name;
    div.addEventListener("mousedown", (e) => this.drag(e, layer, div, "move"));
    if (selected) {
      const handle = document.createElement("div");
      handle.className = "handle";
      handle.addEventListener("mousedown", (e) => this.drag(e, layer, div, "resize"));
      div.append(handle);
    }
    return div;
  }

  drag(down, layer, div, mode) {
    down.stopPropagation();
    down.preventDefault();
    if (mode === "move") this.callbacks.select(layer.id, down.shiftKey);
    const node = this.el.querySelector(`.layer[data-id="${layer.id}"]`) || div;
    const [x0, y0] = [down.clientX, down.clientY];
    let [dx, dy] = [0, 0];
    const move = (e) => {
      [dx, dy] = [e.clientX - x0, e.clientY - y0];
      if (mode === "move") place(node, { ...layer, x: layer.x + dx, y: layer.y + dy });
      else place(node, { ...layer, w: Math.max(10, layer.w + dx), h: Math.max(10, layer.h + dy) });
    };
    const up = () => {
      window.removeEventListener("mousemove", move);
      window.removeEventListener("mouseup", up);
      if (!dx && !dy) return;
      if (mode === "move") this.callbacks.translate(layer.id, dx, dy);
      else this.callbacks.resize(layer.id, Math.max(10, Math.round(layer.w + dx)), Math.max(10, Math.round(layer.h + dy)));
    };
    window.addEventListener("mousemove", move);
    window.addEventListener("mouseup", up);
  }

  showCursor(clientId, x, y, name, color) {
    let node = this.cursors.get(clientId);
    if (!node) {
      node = document.createElement("div");
      node.className = "cursor";
      node.dataset.client = clientId;
      this.cursors.set(clientId, node);
      this.el.append(node);
    }
    node.textContent = name;
    node.style.background = color;
    node.style.left = `${x}px`;
    node.style.top = `${y}px`;
  }

  dropCursorsExcept(present) {
    for (const [clientId, node] of this.cursors) {
      if (!present.has(clientId)) {
        node.remove();
        this.cursors.delete(clientId);
      }
    }
  }
}

function place(node, { x = 0, y = 0, w = 0, h = 0 }) {
  Object.assign(node.style, { left: `${x}px`, top: `${y}px`, width: `${w}px`, height: `${h}px` });
}

function outline(layer, person) {
  const div = document.createElement("div");
  div.className = "remote-selection";
  div.dataset.user = person.user_id;
  div.dataset.layer = layer.id;
  place(div, { x: layer.x - 3, y: layer.y - 3, w: layer.w + 6, h: layer.h + 6 });
  div.style.borderColor = person.color;
  const label = document.createElement("span");
  label.textContent = person.name;
  label.style.background = person.color;
  div.append(label);
  return div;
}
