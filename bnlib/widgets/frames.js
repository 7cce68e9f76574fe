// A figure's pictures flipped through in the browser (bnlib/widgets/frames_display.py): one PNG per checkpoint,
// the one shown is the last whose step is at or before `step`, so a slider linked to `step` plays them with no
// kernel behind the page.

// The index of the last of the increasing `steps` at or before `step` (0 before the first).
function frameIndex(steps, step) {
  let index = 0;
  for (let i = 0; i < steps.length && steps[i] <= step; i++) index = i;
  return index;
}

function render({ model, el }) {
  const image = document.createElement("img");
  image.className = "bnlib-frame";
  el.appendChild(image);
  function show() {
    const frames = model.get("frames");
    if (!frames.length) return;
    const index = frameIndex(model.get("steps"), model.get("step"));
    image.src = `data:image/png;base64,${frames[index]}`;
    image.alt = model.get("captions")[index];
    image.dataset.step = String(model.get("steps")[index]);
  }
  show();
  model.on("change:step change:frames change:steps change:captions", show);
}

export { frameIndex };
export default { render };
