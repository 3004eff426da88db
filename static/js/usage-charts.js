/* The usage page's charts (Chart.js, vendored), drawn from the JSON the page embeds. */
(function () {
  if (!window.Chart) return;
  var data = JSON.parse(document.getElementById("usage-chart-data").textContent);
  var names = JSON.parse(document.getElementById("usage-chart-names").textContent);
  var base = {
    responsive: true, maintainAspectRatio: false, animation: false,
    interaction: { mode: "index", intersect: false },
    plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } } },
    scales: { x: { stacked: true, ticks: { maxTicksLimit: 8 } }, y: { stacked: true, beginAtZero: true } }
  };
  function bars(id, sets) {
    new Chart(document.getElementById(id), { type: "bar", data: { labels: data.labels, datasets: sets }, options: base });
  }
  bars("chart-requests", [
    { label: names.ok, data: data.requests, backgroundColor: "#4f46e5" },
    { label: names.errors, data: data.errors, backgroundColor: "#dc2626" }
  ]);
  bars("chart-tokens", [
    { label: names.prompt_tokens, data: data.prompt_tokens, backgroundColor: "#818cf8" },
    { label: names.completion_tokens, data: data.completion_tokens, backgroundColor: "#0f766e" }
  ]);
  new Chart(document.getElementById("chart-cost"), {
    type: "line",
    data: { labels: data.labels, datasets: [{ label: names.cost, data: data.cost, borderColor: "#4f46e5", backgroundColor: "rgba(79,70,229,.12)", fill: true, pointRadius: 0, tension: 0.2 }] },
    options: { responsive: true, maintainAspectRatio: false, animation: false, plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } } }, scales: { x: { ticks: { maxTicksLimit: 8 } }, y: { beginAtZero: true } } }
  });
})();
