// The page of `zerograd serve`: draw a digit (digit models) or upload an image (image models), ask
// POST /api/predict, show what came back: the class, the probabilities, the input the model saw, the saliency map.
"use strict";

const canvas = document.getElementById("canvas");
const pen = canvas.getContext("2d");
const modelSelect = document.getElementById("model");
const titleEl = document.getElementById("title");
const dropEl = document.getElementById("drop");
const dropText = document.getElementById("drop-text");
const preview = document.getElementById("preview");
const hintEl = document.getElementById("hint");
const predictionEl = document.getElementById("prediction");
const probabilitiesEl = document.getElementById("probabilities");
const errorEl = document.getElementById("error");
const timingEl = document.getElementById("timing");
const inputCanvas = document.getElementById("input");
const saliencyCanvas = document.getElementById("saliency");
const inputCaption = document.getElementById("input-caption");
const saliencyCaption = document.getElementById("saliency-caption");

const TOP_K = 10; // an image model with more classes shows its 10 most probable
const SHRUNK_SIDE = 1024; // an upload too large for one request is sent at most this many pixels across
const DIGITS_HINT = "Draw one digit 0–9 with the mouse, a pen or a finger; the model reads it after each stroke.";

const models = new Map(); // name -> its description from /api/models
let current = { kind: "digits", classes: "0123456789".split(""), channels: 1, image_size: [28, 28] };
let maxRequestBytes = 2 * 1024 * 1024; // replaced by what /api/models says
let drawing = false;
let lastImage = null; // data URL last sent, re-read when the model changes
let lastUploaded = false; // lastImage is an uploaded file (kept across a switch of kind), not a drawing
let requestId = 0; // answers to older requests (or to a cleared image) are dropped
let rows = []; // one bar per class of the current model, in the model's class order

function resetCanvas() {
  pen.fillStyle = "#fff";
  pen.fillRect(0, 0, canvas.width, canvas.height);
  pen.lineWidth = canvas.width / 14; // a stroke about as thick, relative to the digit, as MNIST's
  pen.lineCap = "round";
  pen.lineJoin = "round";
  pen.strokeStyle = "#000";
}

function point(event) {
  // CSS pixels to canvas pixels: the canvas may be shown smaller than its 280x280 (narrow screens).
  const box = canvas.getBoundingClientRect();
  return [(event.clientX - box.left) * canvas.width / box.width, (event.clientY - box.top) * canvas.height / box.height];
}

canvas.addEventListener("pointerdown", (event) => {
  event.preventDefault();
  canvas.setPointerCapture(event.pointerId);
  drawing = true;
  const [x, y] = point(event);
  pen.beginPath();
  pen.moveTo(x, y);
  pen.lineTo(x, y); // a tap leaves a dot
  pen.stroke();
});

canvas.addEventListener("pointermove", (event) => {
  if (!drawing) return;
  const [x, y] = point(event);
  pen.lineTo(x, y);
  pen.stroke();
});

function endStroke() {
  if (!drawing) return;
  drawing = false;
  lastImage = canvas.toDataURL("image/png");
  lastUploaded = false;
  predict(lastImage);
}
canvas.addEventListener("pointerup", endStroke);
canvas.addEventListener("pointercancel", endStroke);

function clearImage() {
  requestId += 1;
  lastImage = null;
  lastUploaded = false;
  resetCanvas();
  preview.hidden = true;
  preview.removeAttribute("src");
  dropText.hidden = false;
  showNothing();
  errorEl.textContent = "";
}
document.getElementById("clear").addEventListener("click", clearImage);

document.getElementById("upload").addEventListener("change", (event) => {
  const file = event.target.files[0];
  event.target.value = ""; // choosing the same file again still fires "change"
  if (file) upload(file);
});

// Drag and drop: a file dropped anywhere on the input card (the drop zone, or the drawing canvas) is uploaded.
const inputCard = document.getElementById("input-card");
inputCard.addEventListener("dragover", (event) => {
  event.preventDefault();
  inputCard.classList.add("over");
});
inputCard.addEventListener("dragleave", () => inputCard.classList.remove("over"));
inputCard.addEventListener("drop", (event) => {
  event.preventDefault();
  inputCard.classList.remove("over");
  const file = event.dataTransfer.files[0];
  if (file) upload(file);
});

function upload(file) {
  const reader = new FileReader();
  reader.onload = async () => {
    lastImage = await fitRequest(reader.result);
    lastUploaded = true;
    showUpload(lastImage);
    predict(lastImage);
  };
  reader.readAsDataURL(file);
}

function fitRequest(dataUrl) {
  // The server reads the file as it is; a photo too large for one request is shrunk here first (as a JPEG).
  if (dataUrl.length < maxRequestBytes - 4096) return Promise.resolve(dataUrl);
  return new Promise((resolve) => {
    const img = new Image();
    img.onload = () => {
      const scale = Math.min(1, SHRUNK_SIDE / Math.max(img.width, img.height));
      const small = document.createElement("canvas");
      small.width = Math.max(1, Math.round(img.width * scale));
      small.height = Math.max(1, Math.round(img.height * scale));
      const ctx = small.getContext("2d");
      ctx.fillStyle = "#fff";
      ctx.fillRect(0, 0, small.width, small.height);
      ctx.drawImage(img, 0, 0, small.width, small.height);
      resolve(small.toDataURL("image/jpeg", 0.92));
    };
    img.onerror = () => resolve(dataUrl); // not an image this browser reads: the server says what is wrong
    img.src = dataUrl;
  });
}

function showUpload(dataUrl) {
  if (current.kind === "images") {
    preview.src = dataUrl;
    preview.hidden = false;
    dropText.hidden = true;
    return;
  }
  // The uploaded file is what the server reads; the canvas only shows it (fitted, on white).
  const img = new Image();
  img.onload = () => {
    resetCanvas();
    const scale = Math.min(canvas.width / img.width, canvas.height / img.height);
    const w = img.width * scale;
    const h = img.height * scale;
    pen.drawImage(img, (canvas.width - w) / 2, (canvas.height - h) / 2, w, h);
  };
  img.src = dataUrl;
}

modelSelect.addEventListener("change", () => {
  const kindBefore = current.kind;
  setModel(models.get(modelSelect.value));
  if (lastImage && (current.kind === kindBefore || lastUploaded)) {
    if (current.kind !== kindBefore) showUpload(lastImage);
    predict(lastImage);
  } else {
    clearImage(); // a drawing is not an image for an image model
  }
});

function setModel(model) {
  // The page follows the model's kind: a drawing canvas for digits, an upload area for images.
  current = model;
  const images = model.kind === "images";
  canvas.hidden = images;
  dropEl.hidden = !images;
  titleEl.textContent = images ? "Classify an image" : "Draw a digit";
  document.title = `zerograd: ${titleEl.textContent.toLowerCase()}`;
  const [h, w] = model.image_size;
  hintEl.textContent = images
    ? `Upload a photo or picture (PNG, JPEG, ...), or drop it here; it is resized to ${h}×${w} ` +
      `${model.channels === 3 ? "colour" : "grey"} pixels as the training images were. ` +
      `Classes: ${model.classes.length}.`
    : DIGITS_HINT;
  inputCaption.textContent = `what the model saw (${h}×${w}${model.channels === 3 ? ", colour" : ""})`;
  saliencyCaption.textContent = images && model.channels === 3
    ? "saliency: max over colours of |∂ score / ∂ pixel|" : "saliency: |∂ score / ∂ pixel|";
  buildBars(model.classes);
  showNothing();
}

async function predict(image) {
  const id = ++requestId;
  const started = performance.now();
  let response;
  let answer;
  try {
    response = await fetch("/api/predict", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ image, model: modelSelect.value || null }),
    });
    answer = await response.json();
  } catch (err) {
    if (id === requestId) { showNothing(); errorEl.textContent = `the server did not answer (${err})`; }
    return;
  }
  if (id !== requestId) return;
  const roundTrip = performance.now() - started;
  if (!response.ok) {
    showNothing();
    errorEl.textContent = answer.detail || `error ${response.status}`;
    return;
  }
  errorEl.textContent = "";
  show(answer);
  const server = /dur=([\d.]+)/.exec(response.headers.get("Server-Timing") || "");
  timingEl.textContent = `${answer.model}: server ${server ? Number(server[1]).toFixed(1) : "?"} ms, ` +
    `round trip ${roundTrip.toFixed(1)} ms`;
}

function buildBars(classes) {
  // Class names are the model file's (folder names): set as text, never as HTML.
  probabilitiesEl.replaceChildren();
  rows = classes.map((name, i) => {
    const row = document.createElement("div");
    row.className = "row";
    row.setAttribute("role", "listitem");
    row.dataset.class = name;
    if (current.kind === "digits") row.dataset.digit = String(i);
    const label = document.createElement("span");
    label.className = "name";
    label.textContent = name;
    label.title = name;
    const track = document.createElement("span");
    track.className = "track";
    const bar = document.createElement("span");
    bar.className = "bar";
    track.appendChild(bar);
    const value = document.createElement("span");
    value.className = "value";
    row.append(label, track, value);
    return row;
  });
  const width = Math.min(12, Math.max(1.2, ...classes.map((name) => 0.7 * name.length + 0.4))); // em, bold text
  probabilitiesEl.style.setProperty("--name-width", `${width}em`);
  probabilitiesEl.append(...rows);
  const more = document.createElement("p");
  more.className = "more";
  more.hidden = rows.length <= TOP_K;
  more.textContent = `the ${TOP_K} most probable of ${rows.length} classes`;
  probabilitiesEl.append(more);
}

function showBars(probabilities, label) {
  // Digits keep their order 0-9; an image model's classes are sorted, most probable first, top TOP_K shown.
  const order = rows.map((_, i) => i);
  if (probabilities && current.kind === "images") order.sort((a, b) => probabilities[b] - probabilities[a]);
  order.forEach((i, rank) => {
    const row = rows[i];
    const p = probabilities ? probabilities[i] : 0;
    row.querySelector(".bar").style.width = `${(100 * p).toFixed(1)}%`;
    row.querySelector(".value").textContent = probabilities ? `${(100 * p).toFixed(1)}%` : "";
    row.classList.toggle("top", i === label);
    row.hidden = rank >= TOP_K;
  });
  const more = probabilitiesEl.querySelector(".more");
  probabilitiesEl.append(...order.map((i) => rows[i]), more);
}

function show(answer) {
  const name = answer.class ?? String(answer.label);
  predictionEl.textContent = name;
  predictionEl.classList.toggle("long", name.length > 2);
  showBars(answer.probabilities, answer.label);
  const colour = Array.isArray(answer.input[0][0]);
  const grey = colour ? (v) => (v[0] + v[1] + v[2]) / 3 : (v) => v;
  paint(inputCanvas, answer.input, colour ? (v) => v.map((x) => 255 * x) : (v) => [255 * v, 255 * v, 255 * v]);
  const magnitude = answer.saliency.map((row) => row.map(Math.abs));
  const top = Math.max(...magnitude.map((row) => Math.max(...row))) || 1;
  paint(saliencyCanvas, magnitude, (m, r, c) => {
    // "hot" colours over a dimmed copy of the input: where changing a pixel would change the score most.
    const t = m / top;
    const a = Math.min(1, 1.5 * t);
    const base = 90 * grey(answer.input[r][c]);
    const heat = [255 * Math.min(1, 3 * t), 255 * Math.min(1, Math.max(0, 3 * t - 1)), 255 * Math.max(0, 3 * t - 2)];
    return heat.map((h) => base * (1 - a) + h * a);
  });
}

function paint(target, grid, colour) {
  // Draw an H x W grid with one block per pixel (no smoothing: the pixels are the point), fitted and centred.
  const small = document.createElement("canvas");
  small.width = grid[0].length;
  small.height = grid.length;
  const ctx = small.getContext("2d");
  const pixels = ctx.createImageData(small.width, small.height);
  for (let r = 0; r < small.height; r++) {
    for (let c = 0; c < small.width; c++) {
      const [red, green, blue] = colour(grid[r][c], r, c);
      const i = 4 * (r * small.width + c);
      pixels.data[i] = red;
      pixels.data[i + 1] = green;
      pixels.data[i + 2] = blue;
      pixels.data[i + 3] = 255;
    }
  }
  ctx.putImageData(pixels, 0, 0);
  const out = target.getContext("2d");
  out.fillStyle = "#000";
  out.fillRect(0, 0, target.width, target.height);
  out.imageSmoothingEnabled = false;
  const scale = Math.min(target.width / small.width, target.height / small.height);
  const w = small.width * scale;
  const h = small.height * scale;
  out.drawImage(small, (target.width - w) / 2, (target.height - h) / 2, w, h);
}

function showNothing() {
  predictionEl.textContent = "";
  predictionEl.classList.remove("long");
  timingEl.textContent = "";
  showBars(null, -1);
  for (const target of [inputCanvas, saliencyCanvas]) {
    const ctx = target.getContext("2d");
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, target.width, target.height);
  }
}

async function loadModels() {
  try {
    const response = await fetch("/api/models");
    const listing = await response.json();
    maxRequestBytes = listing.max_request_bytes || maxRequestBytes;
    for (const m of listing.models) {
      models.set(m.name, m);
      const option = document.createElement("option");
      option.value = m.name;
      option.textContent = m.label;
      option.selected = m.name === listing.default;
      modelSelect.appendChild(option);
    }
    setModel(models.get(modelSelect.value));
  } catch (err) {
    errorEl.textContent = `could not list the models (${err})`;
  }
}

resetCanvas();
buildBars(current.classes);
showNothing();
loadModels();
