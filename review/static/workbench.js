// The garment page as a workbench: keyboard shortcuts, zoom and pan per view, and the touch-up
// editor (brush, parts, undo/redo) whose mask the server snaps to the photo's edges and stores
// as the view's correction. Plain JavaScript, served by the app; no build step.
"use strict";

(function () {
  const bench = document.querySelector(".workbench");
  if (!bench) return;
  const views = Array.from(bench.querySelectorAll("section.view"));
  let current = Math.max(0, views.findIndex((v) => v.dataset.view === (location.hash.replace("#view-", "") || bench.dataset.focus)));

  function focusView(i) {
    current = (i + views.length) % views.length;
    views.forEach((v, n) => v.classList.toggle("focused", n === current));
    views[current].focus({ preventScroll: true });
  }

  function show(kind) {
    views.forEach((v) => {
      const radio = v.querySelector(`input[value="${kind}"]`);
      if (radio) radio.checked = true;
    });
  }

  // Zoom and pan: the wheel zooms about the pointer, a drag pans, a double click fits again.
  function zoomable(stage) {
    const state = { scale: 1, x: 0, y: 0 };
    const apply = () => stage.querySelectorAll("img").forEach((img) => {
      img.style.transform = `translate(${state.x}px, ${state.y}px) scale(${state.scale})`;
    });
    const zoom = (factor, cx, cy) => {
      const next = Math.min(12, Math.max(1, state.scale * factor));
      const f = next / state.scale;
      state.x = cx - (cx - state.x) * f;
      state.y = cy - (cy - state.y) * f;
      state.scale = next;
      if (next === 1) { state.x = 0; state.y = 0; }
      apply();
    };
    stage.addEventListener("wheel", (e) => {
      e.preventDefault();
      const r = stage.getBoundingClientRect();
      zoom(e.deltaY < 0 ? 1.25 : 0.8, e.clientX - r.left, e.clientY - r.top);
    }, { passive: false });
    let drag = null;
    stage.addEventListener("pointerdown", (e) => { drag = { x: e.clientX - state.x, y: e.clientY - state.y }; });
    window.addEventListener("pointerup", () => { drag = null; });
    stage.addEventListener("pointermove", (e) => {
      if (!drag || state.scale === 1) return;
      state.x = e.clientX - drag.x;
      state.y = e.clientY - drag.y;
      apply();
    });
    stage.addEventListener("dblclick", () => zoom(1 / state.scale, 0, 0));
    return (factor) => {
      const r = stage.getBoundingClientRect();
      factor === 0 ? zoom(1 / state.scale, 0, 0) : zoom(factor, r.width / 2, r.height / 2);
    };
  }
  const zooms = views.map((v) => { const s = v.querySelector(".stage"); return s ? zoomable(s) : () => {}; });

  // The touch-up editor.
  const editor = document.getElementById("editor");
  const canvas = editor.querySelector("canvas");
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  const photo = editor.querySelector(".editor-photo");
  const brush = editor.querySelector(".editor-brush");
  const size = document.getElementById("brush-size");
  const note = editor.querySelector(".editor-note");
  const TINT = [0, 170, 255];
  let tool = "add", undo = [], redo = [], painting = false, last = null, editing = null;

  function setTool(name) {
    tool = name;
    editor.querySelectorAll(".tool").forEach((b) => b.classList.toggle("active", b.dataset.tool === name));
    canvas.style.cursor = name === "add" || name === "erase" ? "none" : "crosshair";
  }

  function snapshot() {
    undo.push(ctx.getImageData(0, 0, canvas.width, canvas.height));
    if (undo.length > 30) undo.shift();
    redo = [];
  }

  function step(from, to) {
    if (!from.length) return;
    to.push(ctx.getImageData(0, 0, canvas.width, canvas.height));
    ctx.putImageData(from.pop(), 0, 0);
  }

  function load(url) {
    return new Promise((resolve, reject) => {
      const img = new Image();
      img.onload = () => resolve(img);
      img.onerror = () => reject(new Error(`cannot load ${url}`));
      img.src = url;
    });
  }

  async function open(view) {
    if (!view.dataset.mask) return;
    editing = view;
    editor.hidden = false;
    editor.querySelector(".editor-view").textContent = `Touch up ${view.dataset.view}`;
    note.textContent = "loading…";
    const [shot, mask] = await Promise.all([load(view.dataset.photo), load(view.dataset.mask)]);
    photo.src = shot.src;
    canvas.width = shot.naturalWidth;
    canvas.height = shot.naturalHeight;
    canvas.parentElement.style.aspectRatio = `${canvas.width} / ${canvas.height}`;
    ctx.drawImage(mask, 0, 0, canvas.width, canvas.height);
    // The mask (grey, white = garment) becomes the tinted layer whose alpha is the garment.
    const data = ctx.getImageData(0, 0, canvas.width, canvas.height);
    const px = data.data;
    for (let i = 0; i < px.length; i += 4) {
      const on = px[i] > 127;
      px[i] = TINT[0]; px[i + 1] = TINT[1]; px[i + 2] = TINT[2]; px[i + 3] = on ? 255 : 0;
    }
    ctx.putImageData(data, 0, 0);
    undo = []; redo = [];
    setTool("add");
    note.textContent = "";
  }

  function close() { editor.hidden = true; editing = null; }

  function at(e) {
    const r = canvas.getBoundingClientRect();
    return { x: (e.clientX - r.left) * canvas.width / r.width, y: (e.clientY - r.top) * canvas.height / r.height,
             scale: canvas.width / r.width };
  }

  function stroke(from, to) {
    ctx.globalCompositeOperation = tool === "erase" ? "destination-out" : "source-over";
    ctx.strokeStyle = ctx.fillStyle = `rgb(${TINT.join(",")})`;
    ctx.lineWidth = Number(size.value);
    ctx.lineCap = "round";
    ctx.beginPath();
    ctx.moveTo(from.x, from.y);
    ctx.lineTo(to.x, to.y);
    ctx.stroke();
    ctx.beginPath();
    ctx.arc(to.x, to.y, Number(size.value) / 2, 0, 2 * Math.PI);
    ctx.fill();
    ctx.globalCompositeOperation = "source-over";
  }

  // A connected part of the mask (8-connected, from the clicked pixel): removed, or kept alone.
  function part(p) {
    const w = canvas.width, h = canvas.height;
    const x0 = Math.floor(p.x), y0 = Math.floor(p.y);
    const data = ctx.getImageData(0, 0, w, h);
    const px = data.data;
    if (x0 < 0 || y0 < 0 || x0 >= w || y0 >= h || px[(y0 * w + x0) * 4 + 3] <= 127) {
      note.textContent = "click inside the garment's mask";
      return;
    }
    snapshot();
    const inPart = new Uint8Array(w * h);
    const stack = [y0 * w + x0];
    inPart[y0 * w + x0] = 1;
    while (stack.length) {
      const i = stack.pop(), x = i % w, y = (i - x) / w;
      for (let dy = -1; dy <= 1; dy++) {
        for (let dx = -1; dx <= 1; dx++) {
          const nx = x + dx, ny = y + dy, j = ny * w + nx;
          if (nx >= 0 && ny >= 0 && nx < w && ny < h && !inPart[j] && px[j * 4 + 3] > 127) {
            inPart[j] = 1;
            stack.push(j);
          }
        }
      }
    }
    for (let i = 0; i < w * h; i++) {
      if ((tool === "remove") === (inPart[i] === 1)) px[i * 4 + 3] = 0;
    }
    ctx.putImageData(data, 0, 0);
    note.textContent = "";
  }

  canvas.addEventListener("pointerdown", (e) => {
    const p = at(e);
    if (tool === "remove" || tool === "keep") { part(p); return; }
    snapshot();
    painting = true;
    last = p;
    stroke(p, p);
    canvas.setPointerCapture(e.pointerId);
  });
  canvas.addEventListener("pointermove", (e) => {
    const p = at(e);
    const r = canvas.getBoundingClientRect();
    const d = Number(size.value) / p.scale;
    brush.hidden = !(tool === "add" || tool === "erase");
    brush.style.width = brush.style.height = `${d}px`;
    brush.style.left = `${e.clientX - r.left - d / 2}px`;
    brush.style.top = `${e.clientY - r.top - d / 2}px`;
    if (painting) { stroke(last, p); last = p; }
  });
  canvas.addEventListener("pointerup", () => { painting = false; });
  canvas.addEventListener("pointerleave", () => { brush.hidden = true; });

  async function save() {
    if (!editing) return;
    note.textContent = "snapping the edges to the photo and saving…";
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
    const form = new FormData();
    form.append("csrf_token", bench.dataset.csrf);
    form.append("mask", blob, `${editing.dataset.view}-mask.png`);
    const response = await fetch(editing.dataset.touchup, {
      method: "POST", body: form, credentials: "same-origin", headers: { "X-Requested-With": "fetch" } });
    const answer = await response.json().catch(() => ({ error: `the server answered ${response.status}` }));
    if (!response.ok || !answer.location) {
      note.textContent = `refused: ${answer.error}`;
      return;
    }
    const target = new URL(answer.location, location.href);
    location.assign(target);
    if (target.pathname === location.pathname) location.reload();
  }

  editor.querySelectorAll(".tool").forEach((b) => b.addEventListener("click", () => setTool(b.dataset.tool)));
  document.getElementById("undo").addEventListener("click", () => step(undo, redo));
  document.getElementById("redo").addEventListener("click", () => step(redo, undo));
  document.getElementById("save").addEventListener("click", save);
  document.getElementById("cancel").addEventListener("click", close);
  views.forEach((v, i) => {
    v.addEventListener("click", () => focusView(i));
    const touch = v.querySelector("button.touch");
    if (touch) touch.addEventListener("click", () => open(v));
  });

  function submit(view, name) {
    const button = view.querySelector(`button[name="${name}"]`);
    if (button) button.form.requestSubmit(button);
  }

  function go(url) { if (url) location.assign(url); }

  document.addEventListener("keydown", (e) => {
    if (e.target.closest("input, textarea, select") && e.target.type !== "radio" && e.target.type !== "range") return;
    const key = e.key.toLowerCase();
    if (!editor.hidden) {
      const ctrl = e.ctrlKey || e.metaKey;
      if (ctrl && key === "z") { e.preventDefault(); step(e.shiftKey ? redo : undo, e.shiftKey ? undo : redo); }
      else if (ctrl && key === "y") { e.preventDefault(); step(redo, undo); }
      else if (ctrl) return;
      else if (key === "b") setTool("add");
      else if (key === "e") setTool("erase");
      else if (key === "r") setTool("remove");
      else if (key === "k") setTool("keep");
      else if (key === "[") size.value = Math.max(2, Number(size.value) - 4);
      else if (key === "]") size.value = Math.min(200, Number(size.value) + 4);
      else if (key === "s") { e.preventDefault(); save(); }
      else if (key === "escape") close();
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const view = views[current];
    const actions = {
      "1": () => focusView(0), "2": () => focusView(1), "3": () => focusView(2),
      arrowright: () => focusView(current + 1), arrowleft: () => focusView(current - 1),
      a: () => submit(view, "approve"), m: () => submit(view, "manual"), t: () => open(view),
      o: () => show("overlay"), c: () => show("cutout"), p: () => show("photo"),
      "+": () => zooms[current](1.25), "=": () => zooms[current](1.25), "-": () => zooms[current](0.8),
      "0": () => zooms[current](0),
      j: () => go(bench.dataset.next), k: () => go(bench.dataset.prev),
      "?": () => { const d = document.getElementById("shortcuts"); d.open = !d.open; },
    };
    if (actions[key]) { e.preventDefault(); actions[key](); }
  });

  focusView(current);
})();
