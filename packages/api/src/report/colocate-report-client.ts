/// <reference lib="dom" />
import type { ColocateResult } from "../colocate/run-colocate.js";

/**
 * The code that runs inside the colocate report page, embedded with Function.prototype.toString
 * (as report-client.ts is): self-contained, given only `data` and the `uPlot` constructor.
 */
export function drawColocate(data: ColocateResult, uPlot: any): void {
  const GiB = 1024 ** 3;
  const fmt = (bytes: number) => (bytes >= GiB ? `${(bytes / GiB).toFixed(2)} GiB` : `${(bytes / 1024 ** 2).toFixed(1)} MiB`);
  const el = (tag: string, attrs: Record<string, string> = {}, text?: string) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  };
  const root = document.getElementById("report")!;

  // 1. The strategies side by side: latency, SLO, training.
  const summary = el("section", { id: "summary" });
  summary.append(el("h2", {}, `Inference memory-acquire latency and training, SLO ${data.sloMs} ms`));
  const table = el("table", { class: "facts" });
  const head = el("tr");
  for (const h of ["strategy", "requests", "failed", "acquire p50 (ms)", "p99 (ms)", "within SLO", "handovers", "handover p50 (ms)", "p99 (ms)", "steps done", "steps lost", "training gave up"]) head.append(el("th", {}, h));
  table.append(head);
  for (const r of data.runs) {
    const row = el("tr", { class: "strategy" });
    for (const v of [r.dedup ? `${r.strategy}+dedup` : r.strategy, String(r.requests), String(r.failedRequests), (r.acquireP50Us / 1000).toFixed(3), (r.acquireP99Us / 1000).toFixed(3), `${(100 * r.withinSloShare).toFixed(1)}%`, String(r.handovers.length), (r.handoverP50Us / 1000).toFixed(3), (r.handoverP99Us / 1000).toFixed(3), String(r.trainingStepsCompleted), String(r.trainingStepsLost), fmt(r.trainingGaveUpBytes)]) row.append(el("td", {}, v));
    table.append(row);
  }
  summary.append(table);
  root.append(summary);

  // 2. SLO share and p99 as bars, one pair per strategy.
  const bars = el("section", { id: "bars" });
  bars.append(el("h2", {}, "Share of requests within the SLO"));
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  const rowH = 26;
  svg.setAttribute("class", "chart");
  svg.setAttribute("width", "640");
  svg.setAttribute("height", String(rowH * data.runs.length + 10));
  data.runs.forEach((r, i) => {
    const label = document.createElementNS(ns, "text");
    label.setAttribute("x", "0");
    label.setAttribute("y", String(i * rowH + 17));
    label.textContent = r.dedup ? `${r.strategy}+dedup` : r.strategy;
    const rect = document.createElementNS(ns, "rect");
    rect.setAttribute("x", "90");
    rect.setAttribute("y", String(i * rowH + 4));
    rect.setAttribute("height", "18");
    rect.setAttribute("width", String(Math.max(1, 440 * r.withinSloShare)));
    rect.setAttribute("fill", "#1f77b4");
    const value = document.createElementNS(ns, "text");
    value.setAttribute("x", String(96 + 440 * r.withinSloShare));
    value.setAttribute("y", String(i * rowH + 17));
    value.textContent = `${(100 * r.withinSloShare).toFixed(1)}%`;
    svg.append(label, rect, value);
  });
  bars.append(svg);
  root.append(bars);

  // 3. Dedup: memory with and without shared parameter chunks, N copies of one model.
  if (data.dedup !== null) {
    const d = data.dedup;
    const box = el("section", { id: "dedup" });
    box.append(el("h2", {}, `Dedup of read-only chunks: ${fmt(d.figure.withoutBytes)} alone, ${fmt(d.figure.withBytes)} shared (${d.figure.ratio.toFixed(3)} x); GLake's 6 processes: 13.2 -> 4.6 GB`));
    if (d.sweep.length > 0) {
      const max = Math.max(...d.sweep.map((x) => x.withoutBytes));
      const chart = document.createElementNS(ns, "svg");
      chart.setAttribute("class", "chart");
      chart.setAttribute("width", "640");
      chart.setAttribute("height", String(rowH * d.sweep.length + 10));
      d.sweep.forEach((x, i) => {
        const label = document.createElementNS(ns, "text");
        label.setAttribute("x", "0");
        label.setAttribute("y", String(i * rowH + 17));
        label.textContent = `N = ${x.tenants}`;
        chart.append(label);
        [[x.withoutBytes, "#bbb"], [x.withBytes, "#2ca02c"]].forEach(([bytes, color], j) => {
          const rect = document.createElementNS(ns, "rect");
          rect.setAttribute("x", "70");
          rect.setAttribute("y", String(i * rowH + 3 + j * 10));
          rect.setAttribute("height", "9");
          rect.setAttribute("width", String(Math.max(1, (440 * (bytes as number)) / max)));
          rect.setAttribute("fill", color as string);
          chart.append(rect);
        });
        const value = document.createElementNS(ns, "text");
        value.setAttribute("x", String(76 + 440 * (x.withoutBytes / max)));
        value.setAttribute("y", String(i * rowH + 17));
        value.textContent = `${fmt(x.withoutBytes)} -> ${fmt(x.withBytes)}`;
        chart.append(value);
      });
      box.append(chart);
    }
    root.append(box);
  }

  // 4. Who holds the pool over time, one chart per strategy.
  for (const r of data.runs) {
    const box = el("section", { class: "pool-timeline" });
    box.append(el("h2", {}, `${r.dedup ? `${r.strategy}+dedup` : r.strategy}: the pool over time (peak in use ${fmt(r.peakUsedBytes)})`));
    root.append(box);
    const t = r.timeline;
    if (t.length === 0) continue;
    const value = (_u: any, v: number) => (v == null ? "" : fmt(v));
    new uPlot(
      {
        width: 900,
        height: 260,
        scales: { x: { time: false } },
        axes: [{ label: "seconds" }, { values: (_u: any, vs: number[]) => vs.map((v) => fmt(v)), size: 80 }],
        series: [
          { label: "s" },
          { label: "training", stroke: "#d62728", width: 1.5, value },
          { label: "inference", stroke: "#1f77b4", width: 1.5, value },
          { label: "reserve", stroke: "#2ca02c", width: 1.5, value },
          { label: "free", stroke: "#999", width: 1, dash: [4, 3], value },
          { label: "shared", stroke: "#9467bd", width: 1.5, value },
        ],
      },
      [t.map((p) => p.tS), t.map((p) => p.trainingBytes), t.map((p) => p.inferenceBytes), t.map((p) => p.reservedBytes), t.map((p) => p.freeBytes), t.map((p) => p.sharedBytes)],
      box,
    );
  }
  document.body.setAttribute("data-drawn", "true");
}
