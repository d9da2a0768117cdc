// The web page's code: asks the server's /v1/ endpoints and shows the answer or its error.
// No framework and nothing from a CDN: the page works on a machine without internet.
"use strict";

const $ = (id) => document.getElementById(id);

function showError(element, message) {
  element.textContent = message;
  element.hidden = false;
}

async function errorMessage(response) {
  // The server answers every error as {"error": {"status", "code", "message"}}.
  try {
    const body = await response.json();
    return `${response.status}: ${body.error.message}`;
  } catch (e) {
    return `${response.status} ${response.statusText}`;
  }
}

async function loadModels() {
  const response = await fetch("/v1/models");
  if (!response.ok) {
    $("status").textContent = `not ready (${await errorMessage(response)})`;
    setTimeout(loadModels, 1000);
    return;
  }
  const body = await response.json();
  const select = $("model");
  select.innerHTML = "";
  for (const model of body.models.filter((m) => m.task === "digits")) {
    const option = document.createElement("option");
    option.value = model.name;
    option.textContent = model.conditional ? model.name : `${model.name} (no digit)`;
    option.dataset.conditional = String(model.conditional);
    select.appendChild(option);
  }
  $("status").textContent = `ready: ${body.models.length} models`;
  document.body.dataset.ready = "true";
}

async function generateDigits(event) {
  event.preventDefault();
  const error = $("digits-error");
  error.hidden = true;
  const params = new URLSearchParams({ model: $("model").value, count: $("count").value });
  if ($("digit").value !== "") params.set("digit", $("digit").value);
  if ($("seed").value.trim() !== "") params.set("seed", $("seed").value.trim());
  const response = await fetch(`/v1/digits?${params}`);
  if (!response.ok) {
    showError(error, await errorMessage(response));
    return;
  }
  const image = $("digits-image");
  const old = image.src;
  image.src = URL.createObjectURL(await response.blob());
  if (old.startsWith("blob:")) URL.revokeObjectURL(old);
  image.hidden = false;
  $("digits-caption").textContent =
    `${params.get("model")}, seed ${response.headers.get("x-seed")}, ` +
    `computed in a batch of ${response.headers.get("x-batch-images")} images`;
}

async function writeText(event) {
  event.preventDefault();
  const error = $("text-error");
  error.hidden = true;
  const request = {
    prompt: $("prompt").value,
    max_new_tokens: Number($("max-new-tokens").value),
    temperature: Number($("temperature").value),
  };
  if ($("top-k").value !== "") request.top_k = Number($("top-k").value);
  if ($("text-seed").value.trim() !== "") request.seed = Number($("text-seed").value.trim());
  const response = await fetch("/v1/text", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(request),
  });
  if (!response.ok) {
    showError(error, await errorMessage(response));
    return;
  }
  const body = await response.json();
  $("text-output").textContent = body.prompt + body.text;
}

$("digits-form").addEventListener("submit", generateDigits);
$("text-form").addEventListener("submit", writeText);
loadModels();
