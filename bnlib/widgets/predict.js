// A predict-then-reveal question on a page without a kernel (bnlib/widgets/predict.py, BNLIB_STATIC=1): the
// kernel's parts and CSS classes, and Reveal compares the choice with the answer embedded in the page.

function render({ model, el }) {
  const root = document.createElement("div");
  root.className = "bnlib-predict";
  const question = document.createElement("div");
  question.innerHTML = model.get("question");  // HTML the kernel escaped (bnlib.widgets.predict._inline_html)
  const choices = document.createElement("div");
  choices.className = "bnlib-predict-choices";
  const group = `bnlib-predict-${Math.random().toString(36).slice(2)}`;  // one radio group per question
  const inputs = model.get("choices").map((choice) => {
    const label = document.createElement("label");
    label.style.display = "block";
    const input = document.createElement("input");
    Object.assign(input, { type: "radio", name: group, value: choice });
    label.append(input, ` ${choice}`);
    choices.appendChild(label);
    return input;
  });
  const reveal = document.createElement("button");
  reveal.className = "bnlib-predict-reveal jupyter-button widget-button";
  Object.assign(reveal, { textContent: "Reveal", disabled: true, title: model.get("prompt") });
  const feedback = document.createElement("div");
  feedback.className = "bnlib-predict-feedback";
  feedback.textContent = model.get("prompt");
  choices.addEventListener("change", () => { reveal.disabled = false; });
  reveal.addEventListener("click", () => {
    const chosen = inputs.find((input) => input.checked);
    if (!chosen) return;
    const right = chosen.value === model.get("answer");
    for (const input of inputs) input.disabled = true;
    reveal.disabled = true;  // the prediction is locked, as in the kernel's widget
    feedback.innerHTML = model.get(right ? "right" : "wrong");
    feedback.classList.add(right ? "bnlib-predict-right" : "bnlib-predict-wrong");
  });
  root.append(question, choices, reveal, feedback);
  el.appendChild(root);
}

export default { render };
