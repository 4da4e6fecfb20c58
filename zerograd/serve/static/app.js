// The draw-a-digit page of `zerograd serve`: draw or upload, ask POST /api/predict, show what came back.
"use strict";

const canvas = document.getElementById("canvas");
const pen = canvas.getContext("2d");
const modelSelect = document.getElementById("model");
const predictionEl = document.getElementById("prediction");
const probabilitiesEl = document.getElementById("probabilities");
const errorEl = document.getElementById("error");
const timingEl = document.getElementById("timing");
const inputCanvas = document.getElementById("input");
const saliencyCanvas = document.getElementById("saliency");

let drawing = false;
let lastImage = null; // data URL last sent, re-read when the model changes
let requestId = 0; // answers to older requests (or to a cleared canvas) are dropped

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
  predict(lastImage);
}
canvas.addEventListener("pointerup", endStroke);
canvas.addEventListener("pointercancel", endStroke);

document.getElementById("clear").addEventListener("click", () => {
  requestId += 1;
  lastImage = null;
  resetCanvas();
  showNothing();
  errorEl.textContent = "";
});

document.getElementById("upload").addEventListener("change", (event) => {
  const file = event.target.files[0];
  event.target.value = ""; // choosing the same file again still fires "change"
  if (!file) return;
  const reader = new FileReader();
  reader.onload = () => {
    lastImage = reader.result;
    showOnCanvas(lastImage);
    predict(lastImage);
  };
  reader.readAsDataURL(file);
});

modelSelect.addEventListener("change", () => {
  if (lastImage) predict(lastImage);
});

function showOnCanvas(dataUrl) {
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

function buildBars() {
  for (let d = 0; d < 10; d++) {
    const row = document.createElement("div");
    row.className = "row";
    row.dataset.digit = String(d);
    row.innerHTML = `<span class="digit">${d}</span><span class="track"><span class="bar"></span></span>` +
      `<span class="value"></span>`;
    probabilitiesEl.appendChild(row);
  }
}

function show(answer) {
  predictionEl.textContent = String(answer.label);
  probabilitiesEl.querySelectorAll(".row").forEach((row, d) => {
    const p = answer.probabilities[d];
    row.querySelector(".bar").style.width = `${(100 * p).toFixed(1)}%`;
    row.querySelector(".value").textContent = `${(100 * p).toFixed(1)}%`;
    row.classList.toggle("top", d === answer.label);
  });
  paint(inputCanvas, answer.input, (v) => [255 * v, 255 * v, 255 * v]);
  const magnitude = answer.saliency.map((row) => row.map(Math.abs));
  const top = Math.max(...magnitude.map((row) => Math.max(...row))) || 1;
  paint(saliencyCanvas, magnitude, (m, r, c) => {
    // "hot" colours over a dimmed copy of the input: where changing a pixel would change the score most.
    const t = m / top;
    const a = Math.min(1, 1.5 * t);
    const base = 90 * answer.input[r][c];
    const heat = [255 * Math.min(1, 3 * t), 255 * Math.min(1, Math.max(0, 3 * t - 1)), 255 * Math.max(0, 3 * t - 2)];
    return heat.map((h) => base * (1 - a) + h * a);
  });
}

function paint(target, grid, colour) {
  // Draw a 28x28 grid with one square per pixel (no smoothing: the pixels are the point).
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
  out.imageSmoothingEnabled = false;
  out.drawImage(small, 0, 0, target.width, target.height);
}

function showNothing() {
  predictionEl.textContent = "";
  timingEl.textContent = "";
  probabilitiesEl.querySelectorAll(".row").forEach((row) => {
    row.querySelector(".bar").style.width = "0";
    row.querySelector(".value").textContent = "";
    row.classList.remove("top");
  });
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
    for (const m of listing.models) {
      const option = document.createElement("option");
      option.value = m.name;
      option.textContent = m.label;
      option.selected = m.name === listing.default;
      modelSelect.appendChild(option);
    }
  } catch (err) {
    errorEl.textContent = `could not list the models (${err})`;
  }
}

resetCanvas();
buildBars();
showNothing();
loadModels();
