// dlbox serve's page: pick a model, send an image, a WAV file or a word, see the answer drawn.
// Plain JavaScript, no library, nothing fetched from elsewhere.
"use strict";

const $ = (id) => document.getElementById(id);
const COLORS = ["#e53935", "#1e88e5", "#43a047", "#fb8c00", "#8e24aa", "#00acc1", "#6d4c41", "#3949ab"];
let models = [];
let image = null; // the last image sent (an ImageBitmap), for drawing boxes on

function headers(extra) {
  const h = Object.assign({}, extra || {});
  const key = $("key").value || sessionStorage.getItem("dlbox-key") || "";
  if (key) h["Authorization"] = "Bearer " + key;
  return h;
}

function current() {
  return models.find((m) => m.id === $("model").value);
}

async function loadModels() {
  let resp;
  try {
    resp = await fetch("/v1/models", { headers: headers() });
  } catch (e) {
    $("status").textContent = "server unreachable";
    return;
  }
  if (resp.status === 401) {
    $("status").textContent = "this server needs its API key";
    $("key-row").style.display = "";
    return;
  }
  const body = await resp.json();
  models = body.data;
  $("model").innerHTML = "";
  for (const m of models) {
    const o = document.createElement("option");
    o.value = m.id;
    o.textContent = m.id + " (" + m.task + ")";
    $("model").appendChild(o);
  }
  $("status").textContent = body.ready ? models.length + " model(s) ready" : "loading models...";
  if (!body.ready) setTimeout(loadModels, 1000);
  showOptions();
}

function showOptions() {
  const m = current();
  const task = m ? m.task : "";
  $("task").textContent = task;
  $("opt-conf").style.display = task === "detect" ? "block" : "none";
  $("opt-topk").style.display = task === "classify" || task === "caffe" || task === "text" ? "block" : "none";
  $("word-form").style.display = task === "text" ? "flex" : "none";
}

function query(task) {
  const q = new URLSearchParams();
  if (task === "detect") q.set("conf", $("conf").value);
  if (task === "classify" || task === "caffe") q.set("topk", $("topk").value);
  if (task === "text") q.set("topn", $("topk").value);
  const s = q.toString();
  return s ? "?" + s : "";
}

function clear() {
  $("error").textContent = "";
  $("bars").innerHTML = "";
  $("transcript").innerHTML = "";
  $("faces").innerHTML = "";
  $("json").textContent = "";
  const c = $("canvas");
  c.style.display = "none";
  c.dataset.boxes = "";
}

async function send(body, type) {
  const m = current();
  if (!m) return;
  $("status").textContent = "sending...";
  const resp = await fetch("/v1/models/" + encodeURIComponent(m.id) + "/predict" + query(m.task), {
    method: "POST", body: body, headers: headers({ "Content-Type": type || "application/octet-stream" }),
  });
  const answer = await resp.json();
  $("json").textContent = JSON.stringify(answer, null, 2);
  if (!resp.ok) {
    $("error").textContent = answer.error || resp.statusText;
    $("status").textContent = "error " + resp.status;
    return;
  }
  $("status").textContent = "answered (" + resp.headers.get("x-request-id") + ")";
  render(m.task, answer[0]);
}

function bars(rows) {
  const box = $("bars");
  box.innerHTML = "";
  for (const r of rows) {
    const row = document.createElement("div");
    row.className = "bar";
    const pct = Math.max(0, Math.min(1, r.value));
    row.innerHTML = '<span class="label"></span><span class="track"><span class="fill"></span></span><span class="value"></span>';
    row.querySelector(".label").textContent = r.label;
    row.querySelector(".fill").style.width = (100 * pct).toFixed(1) + "%";
    row.querySelector(".value").textContent = r.text || (100 * r.value).toFixed(1) + "%";
    box.appendChild(row);
  }
}

function drawImage() {
  const c = $("canvas");
  if (!image) return null;
  const scale = Math.max(1, Math.floor(480 / Math.max(image.width, image.height)));
  c.width = image.width * scale;
  c.height = image.height * scale;
  c.style.display = "block";
  const ctx = c.getContext("2d");
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(image, 0, 0, c.width, c.height);
  return { ctx, scale };
}

function drawBoxes(items) {
  const d = drawImage();
  if (!d) return;
  const { ctx, scale } = d;
  ctx.lineWidth = 2;
  ctx.font = "14px sans-serif";
  items.forEach((it, i) => {
    const [x1, y1, x2, y2] = it.box.map((v) => v * scale);
    const color = COLORS[i % COLORS.length];
    ctx.strokeStyle = color;
    ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    if (it.text) {
      const w = ctx.measureText(it.text).width + 6;
      ctx.fillStyle = color;
      ctx.fillRect(x1, Math.max(0, y1 - 18), w, 18);
      ctx.fillStyle = "#fff";
      ctx.fillText(it.text, x1 + 3, Math.max(14, y1 - 4));
    }
  });
  $("canvas").dataset.boxes = String(items.length);
}

function seconds(v) {
  return typeof v === "number" ? v.toFixed(2) + " s" : "";
}

function render(task, r) {
  if (!r) return;
  if (r.predictions) { // classify, caffe
    bars(r.predictions.map((p) => ({ label: p.label, value: p.prob })));
    drawImage();
  } else if (r.detections) { // detect
    drawBoxes(r.detections.map((d) => ({ box: d.box, text: d.label + " " + d.score.toFixed(2) })));
    bars(r.detections.map((d) => ({ label: d.label, value: d.score })));
  } else if (r.faces) { // face: boxes, and distances when given
    drawBoxes(r.faces.map((f, i) => ({ box: f.box, text: "face " + (i + 1) + (f.score !== undefined ? " " + f.score.toFixed(2) : "") })));
    const rows = [];
    const pair = r.pair || {};
    if (pair.distance !== undefined) rows.push({ label: "distance", value: Math.min(1, pair.distance / 2), text: pair.distance.toFixed(3) });
    if (pair.same !== undefined) rows.push({ label: "same person", value: pair.same ? 1 : 0, text: String(pair.same) });
    bars(rows);
  } else if (r.text !== undefined || r.transcript !== undefined) { // asr
    const box = $("transcript");
    const h = document.createElement("h3");
    h.textContent = r.text !== undefined ? r.text : r.transcript;
    box.appendChild(h);
    // tokens with their start times (asr predict: "tokens" and "timestamps" side by side)
    const tokens = (r.tokens || []).map((t, i) => ({ start: (r.timestamps || [])[i], text: t }));
    for (const s of r.segments || r.words || tokens) {
      const div = document.createElement("div");
      div.className = "seg";
      div.innerHTML = '<span class="t"></span><span class="w"></span>';
      div.querySelector(".t").textContent = seconds(s.start) + (s.end !== undefined ? " - " + seconds(s.end) : "");
      div.querySelector(".w").textContent = s.text || s.word || s.token || "";
      box.appendChild(div);
    }
  } else { // word2vec and anything else: the first list of {word|label, score|similarity}
    const list = r.similar || Object.values(r).find((v) => Array.isArray(v) && v.length && typeof v[0] === "object");
    if (list) {
      bars(list.map((n) => ({ label: n.word || n.label || "", value: n.similarity !== undefined ? n.similarity : (n.score || 0),
        text: (n.similarity !== undefined ? n.similarity : (n.score || 0)).toFixed(3) })));
    }
  }
}

async function sendFile(file) {
  clear();
  image = null;
  if (file.type.startsWith("image/") || /\.(png|jpe?g|bmp|gif|webp)$/i.test(file.name)) {
    try { image = await createImageBitmap(file); } catch (e) { image = null; }
  }
  await send(file, file.type);
}

$("key").addEventListener("change", () => { sessionStorage.setItem("dlbox-key", $("key").value); loadModels(); });
$("model").addEventListener("change", () => { clear(); showOptions(); });
$("file").addEventListener("change", (e) => { if (e.target.files[0]) sendFile(e.target.files[0]); });
$("word-form").addEventListener("submit", (e) => { e.preventDefault(); clear(); image = null; send($("word").value, "text/plain"); });
const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  if (e.dataTransfer.files[0]) sendFile(e.dataTransfer.files[0]);
});
$("key-row").style.display = "none";
$("key").value = sessionStorage.getItem("dlbox-key") || "";
loadModels();
