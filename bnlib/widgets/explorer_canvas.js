// The momentum explorer's figure in the browser (bnlib/widgets/browser_display.py): a PNG background from
// matplotlib (axes, ticks, labels, batch dots, legend) and, drawn here over it, what depends on the momentum:
// the running buffer replayed with PyTorch's rule, its marker at the current step, and the whole-training-set
// reference.
// A momentum change redraws at once, without a round trip to the kernel.

// running = (1 - momentum) * running + momentum * batch, row 0 = init; momentum null: the cumulative average.
function replay(batch, steps, momentum, init) {
  const running = new Float64Array(steps + 1);
  let value = init;
  running[0] = init;
  for (let t = 1; t <= steps; t++) {
    const factor = momentum === null ? 1 / t : momentum;
    value = (1 - factor) * value + factor * batch[t - 1];
    running[t] = value;
  }
  return running;
}

// Data coordinates -> canvas pixels inside one panel's axes box.
function scales(panel) {
  const [left, top, width, height] = panel.box;
  const [x0, x1] = panel.xlim;
  const y = panel.log ? Math.log10 : (v) => v;
  const [y0, y1] = panel.ylim.map(y);
  return {
    x: (v) => left + ((v - x0) / (x1 - x0)) * width,
    y: (v) => top + height - ((y(v) - y0) / (y1 - y0)) * height,
  };
}

function strokeLine(context, xs, ys, scale, style) {
  context.beginPath();
  let drawing = false;
  for (let i = 0; i < xs.length; i++) {
    const px = scale.x(xs[i]), py = scale.y(ys[i]);
    if (!Number.isFinite(py)) { drawing = false; continue; }  // log axis: a value <= 0 has no place
    if (drawing) context.lineTo(px, py); else context.moveTo(px, py);
    drawing = true;
  }
  context.strokeStyle = style.color;
  context.lineWidth = style.linewidth;
  context.setLineDash(style.dashes || []);
  context.stroke();
  context.setLineDash([]);
}

function markers(context, xs, ys, scale, style) {
  for (let i = 0; i < xs.length; i++) {
    const px = scale.x(xs[i]), py = scale.y(ys[i]);
    if (!Number.isFinite(py)) continue;
    context.beginPath();
    context.arc(px, py, style.markersize / 2, 0, 2 * Math.PI);
    context.fillStyle = style.markerfacecolor;
    context.fill();
    if (style.markeredgewidth > 0) {
      context.lineWidth = style.markeredgewidth;
      context.strokeStyle = style.markeredgecolor;
      context.stroke();
    }
  }
}

// The readout of a static page: the text for the slider's momentum, from the table the kernel embedded.
function readoutText(readouts, momentum, cumulative) {
  if (cumulative) return readouts.cumulative;
  const index = Math.round((Math.log10(momentum) - readouts.exponent_min) / readouts.exponent_step);
  return readouts.momentum[Math.min(Math.max(index, 0), readouts.momentum.length - 1)];
}

function float64(view) {  // a Bytes trait arrives as a DataView
  if (!view || !view.byteLength) return new Float64Array(0);
  return new Float64Array(view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength));
}

function render({ model, el }) {
  const canvas = document.createElement("canvas");
  canvas.className = "bnlib-explorer-canvas";
  el.appendChild(canvas);
  const context = canvas.getContext("2d");
  let background = null, backgroundBytes = null, series = {};

  function draw() {
    // A new background (new x or y limits, new dots) is still loading: keep the old picture until it has.
    if (!background || model.get("background") !== backgroundBytes) return;
    const width = model.get("width"), height = model.get("height"), ratio = window.devicePixelRatio || 1;
    if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
      canvas.width = Math.round(width * ratio); canvas.height = Math.round(height * ratio);
      canvas.style.width = `${width}px`; canvas.style.height = `${height}px`;
    }
    context.setTransform(ratio, 0, 0, ratio, 0, 0);  // draw in CSS pixels, sharp on a high-density screen
    context.drawImage(background, 0, 0, width, height);
    const step = model.get("step"), momentum = model.get("cumulative") ? null : model.get("momentum");
    const reference = model.get("reference"), styles = model.get("styles");
    for (const panel of model.get("panels")) {
      const scale = scales(panel), batch = series[panel.key];
      if (!batch || batch.length < step) continue;
      const running = replay(batch, step, momentum, panel.init);
      const [left, top, boxWidth, boxHeight] = panel.box;
      context.save();
      context.beginPath();
      context.rect(left, top, boxWidth, boxHeight);
      context.clip();  // as matplotlib clips lines to the axes
      const steps = Array.from(running, (_, i) => i);
      strokeLine(context, steps, running, scale, styles.running);
      if (reference.steps && reference.steps.length) {
        strokeLine(context, reference.steps, reference[panel.key], scale, styles.reference);
        markers(context, reference.steps, reference[panel.key], scale, styles.reference);
      }
      markers(context, [step], [running[step]], scale, styles.current);
      context.restore();
    }
  }

  function loadBackground() {
    const bytes = model.get("background");
    if (!bytes || !bytes.byteLength) return;
    const url = URL.createObjectURL(new Blob([bytes], { type: "image/png" }));
    const image = new Image();
    image.onload = () => {
      URL.revokeObjectURL(url);
      if (model.get("background") !== bytes) return;  // a newer one is on its way
      background = image; backgroundBytes = bytes;
      draw();
    };
    image.src = url;
  }

  const readout = document.createElement("div");  // shown only where the kernel embedded a readout table
  readout.className = "bnlib-explorer-readout";
  el.appendChild(readout);
  function showReadout() {
    const readouts = model.get("readouts");
    const shown = Boolean(readouts && readouts.momentum && readouts.momentum.length);
    readout.style.display = shown ? "" : "none";
    readout.textContent = shown ? readoutText(readouts, model.get("momentum"), model.get("cumulative")) : "";
  }

  function loadSeries() {
    series = { mean: float64(model.get("mean")), var: float64(model.get("var")) };
  }

  loadSeries();
  loadBackground();
  showReadout();
  if (model.get("pixel_ratio") !== (window.devicePixelRatio || 1)) {  // the kernel renders the background to match
    model.set("pixel_ratio", window.devicePixelRatio || 1);
    model.save_changes();
  }
  model.on("change:mean change:var", () => { loadSeries(); draw(); });
  model.on("change:background", loadBackground);
  model.on("change:momentum change:cumulative change:step change:panels change:reference change:styles", draw);
  model.on("change:momentum change:cumulative change:readouts", showReadout);
}

export { readoutText, replay };
export default { render };
