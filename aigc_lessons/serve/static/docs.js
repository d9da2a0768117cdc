// Renders the OpenAPI description as a table: the offline stand-in for Swagger UI (a CDN page).
"use strict";

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text;
  row.appendChild(td);
}

fetch("/v1/openapi.json").then((r) => r.json()).then((spec) => {
  const table = document.createElement("table");
  table.innerHTML = "<tr><th>method</th><th>path</th><th>what</th><th>parameters</th></tr>";
  for (const [path, methods] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const row = document.createElement("tr");
      cell(row, method.toUpperCase());
      cell(row, path);
      cell(row, op.description || op.summary || "");
      const params = (op.parameters || []).map((p) => {
        const s = p.schema || {};
        const range = [s.minimum !== undefined ? `>= ${s.minimum}` : "",
                       s.maximum !== undefined ? `<= ${s.maximum}` : ""].filter(Boolean).join(", ");
        return `${p.name}${range ? ` (${range})` : ""}`;
      });
      if (op.requestBody) params.push("JSON body: see the schema");
      cell(row, params.join("; "));
      table.appendChild(row);
    }
  }
  const holder = document.getElementById("endpoints");
  holder.textContent = "";
  holder.appendChild(table);
});
