/// <reference lib="dom" />
import type { ReportData } from "./report-data.js";

/**
 * The code that runs inside the report page. It is embedded with Function.prototype.toString, so
 * it must stay self-contained: no imports, no closures over module state, only the `data` and the
 * `uPlot` constructor it is given.
 */
export function drawReport(data: ReportData, uPlot: any): void {
  const GiB = 1024 ** 3;
  const fmt = (bytes: number) =>
    bytes >= GiB ? `${(bytes / GiB).toFixed(2)} GiB` : bytes >= 1024 ** 2 ? `${(bytes / 1024 ** 2).toFixed(1)} MiB` : `${bytes} B`;
  const palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2"];
  const el = (tag: string, attrs: Record<string, string> = {}, text?: string) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  };
  const root = document.getElementById("report")!;
  for (const caveat of data.caveats ?? []) root.append(el("p", { class: "caveat" }, `Note: ${caveat}.`));

  // 1. Reserved memory over the trace, one line per policy, with allocated memory (the same for all).
  const timelineBox = el("section", { id: "timeline" });
  timelineBox.append(el("h2", {}, "Reserved and allocated memory over the trace"));
  root.append(timelineBox);
  const base = data.policies[0];
  if (base && base.timeline.eventIndex.length > 0) {
    const x = base.timeline.eventIndex;
    const series: any[] = [{ label: "event" }, { label: "allocated", stroke: "#555", width: 1.5, dash: [4, 3], value: (_u: any, v: number) => (v == null ? "" : fmt(v)) }];
    const columns: number[][] = [x, base.timeline.allocatedBytes];
    data.policies.forEach((p, i) => {
      series.push({ label: `${p.policy} reserved (device ${p.device})`, stroke: palette[i % palette.length], width: 2, value: (_u: any, v: number) => (v == null ? "" : fmt(v)) });
      columns.push(p.timeline.reservedBytes.length === x.length ? p.timeline.reservedBytes : x.map(() => NaN));
    });
    const width = Math.min(1100, document.body.clientWidth - 40);
    new uPlot(
      {
        width,
        height: 360,
        series,
        scales: { x: { time: false } },
        axes: [{ label: "trace event" }, { label: "bytes", size: 80, values: (_u: any, ticks: number[]) => ticks.map(fmt) }],
      },
      columns,
      timelineBox,
    );
  }

  // 2. Minimum capacities and peaks side by side, as horizontal bars.
  const capacityBox = el("section", { id: "capacities" });
  capacityBox.append(el("h2", {}, "Memory each policy needs"));
  const maxBytes = Math.max(1, ...data.policies.map((p) => Math.max(p.peakReservedBytes, p.minCapacityBytes ?? 0)));
  const svgNs = "http://www.w3.org/2000/svg";
  const rowHeight = 26;
  const bars = document.createElementNS(svgNs, "svg");
  const barsWidth = 900;
  bars.setAttribute("width", String(barsWidth));
  bars.setAttribute("height", String(data.policies.length * rowHeight * 2 + 20));
  bars.setAttribute("class", "chart bars");
  data.policies.forEach((p, i) => {
    const rows: [string, number | null, string][] = [
      [`${p.policy} peak reserved`, p.peakReservedBytes, palette[i % palette.length]],
      [`${p.policy} min capacity`, p.minCapacityBytes, "#999"],
    ];
    rows.forEach(([label, value, color], j) => {
      const y = (i * 2 + j) * rowHeight + 4;
      const text = document.createElementNS(svgNs, "text");
      text.setAttribute("x", "0");
      text.setAttribute("y", String(y + 16));
      text.textContent = label;
      bars.append(text);
      if (value === null || Number.isNaN(value)) return;
      const rect = document.createElementNS(svgNs, "rect");
      const w = ((barsWidth - 330) * value) / maxBytes;
      rect.setAttribute("x", "200");
      rect.setAttribute("y", String(y + 3));
      rect.setAttribute("width", String(Math.max(1, w)));
      rect.setAttribute("height", String(rowHeight - 8));
      rect.setAttribute("fill", color);
      bars.append(rect);
      const value_ = document.createElementNS(svgNs, "text");
      value_.setAttribute("x", String(206 + w));
      value_.setAttribute("y", String(y + 16));
      value_.textContent = fmt(value);
      bars.append(value_);
    });
  });
  capacityBox.append(bars);
  root.append(capacityBox);

  // 3. Per policy: fragmentation at the peak, driver calls, allocator time, and the segment layout.
  for (const [i, p] of data.policies.entries()) {
    const box = el("section", { class: "policy" });
    box.append(el("h2", {}, `${p.policy} (device ${p.device})`));
    box.append(el("p", { class: "meta" }, p.description));
    const waste = p.atPeak.reservedBytes - p.atPeak.allocatedBytes;
    const facts = el("table", { class: "facts" });
    const rows: [string, string][] = [
      ["peak reserved", fmt(p.peakReservedBytes)],
      ["peak allocated", fmt(p.peakAllocatedBytes)],
      ["at peak reserved: reserved but unallocated", `${fmt(waste)} (${((100 * waste) / Math.max(1, p.atPeak.reservedBytes)).toFixed(1)}% of reserved)`],
      ["minimum capacity", p.minCapacityBytes === null || Number.isNaN(p.minCapacityBytes) ? "not searched" : fmt(p.minCapacityBytes)],
      ["out-of-memory errors", String(p.ooms)],
      ["simulated allocator time", `${(p.allocatorSeconds * 1000).toFixed(2)} ms`],
      ["driver calls", Object.entries(p.driverCalls).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(", ") || "none"],
    ];
    for (const [k, v] of rows) {
      const tr = el("tr");
      tr.append(el("th", {}, k), el("td", {}, v));
      facts.append(tr);
    }
    box.append(facts);
    box.append(el("h3", {}, `Segment layout at peak reserved memory (event ${p.atPeak.eventIndex}): allocated blocks in colour, free space grey`));
    const segments = [...p.layoutAtPeak].sort((a, b) => b.sizeBytes - a.sizeBytes);
    const layout = document.createElementNS(svgNs, "svg");
    const layoutWidth = 1000;
    const biggest = Math.max(1, ...segments.map((s) => s.sizeBytes));
    const segHeight = 10;
    layout.setAttribute("width", String(layoutWidth));
    layout.setAttribute("height", String(segments.length * (segHeight + 2) + 4));
    layout.setAttribute("class", "chart layout");
    segments.forEach((s, row) => {
      const y = row * (segHeight + 2) + 2;
      const scale = (layoutWidth - 10) / biggest;
      const bg = document.createElementNS(svgNs, "rect");
      bg.setAttribute("x", "0");
      bg.setAttribute("y", String(y));
      bg.setAttribute("width", String(Math.max(1, s.sizeBytes * scale)));
      bg.setAttribute("height", String(segHeight));
      bg.setAttribute("fill", "#ddd");
      const title = document.createElementNS(svgNs, "title");
      title.textContent = `segment 0x${s.address.toString(16)}: ${fmt(s.sizeBytes)} ${s.pool}${s.expandable ? " expandable" : ""}`;
      bg.append(title);
      layout.append(bg);
      for (const b of s.blocks) {
        if (!b.allocated) continue;
        const r = document.createElementNS(svgNs, "rect");
        r.setAttribute("x", String(b.offsetBytes * scale));
        r.setAttribute("y", String(y));
        r.setAttribute("width", String(Math.max(0.5, b.sizeBytes * scale)));
        r.setAttribute("height", String(segHeight));
        r.setAttribute("fill", palette[i % palette.length]);
        layout.append(r);
      }
    });
    box.append(layout);
    root.append(box);
  }
  // a tiering report has no per-policy replays: no timeline, no capacity bars
  if (data.policies.length === 0) {
    timelineBox.remove();
    capacityBox.remove();
  }

  // 4. Tiering (`lakebed tiering --html`): the estimated stall against the device capacity, the
  // online victim choice beside the clairvoyant bound, one chart per device.
  for (const t of data.tiering ?? []) {
    const box = el("section", { class: "tiering", id: `tiering-${t.device}` });
    box.append(el("h2", {}, `Tiering: estimated stall against device capacity (device ${t.device})`));
    const facts = el("table", { class: "facts" });
    const rows: [string, string][] = [
      ["computation time", `${(t.computeSeconds * 1000).toFixed(1)} ms`],
      ["lakebed without tiering needs", fmt(t.lakebedMinCapacityBytes)],
      ["runs at all from", `${fmt(t.minCapacityBytes.online)} online, ${fmt(t.minCapacityBytes.belady)} belady`],
      ["stall under 5% from", `${fmt(t.stallTargetCapacityBytes.online)} online, ${fmt(t.stallTargetCapacityBytes.belady)} belady`],
    ];
    for (const [k, v] of rows) {
      const tr = el("tr");
      tr.append(el("th", {}, k), el("td", {}, v));
      facts.append(tr);
    }
    box.append(facts);
    root.append(box);
    const ms = (v: number | null) => (v == null ? null : v * 1000);
    // the legend shows the point under the cursor; a capacity without a point is one the trace does not run at
    const stallValue = (_u: any, v: number | null, _s: number, idx: number | null) => (idx == null ? "" : v == null ? "does not run" : `${v.toFixed(1)} ms`);
    new uPlot(
      {
        width: Math.min(1100, document.body.clientWidth - 40),
        height: 320,
        series: [
          { label: "capacity", value: (_u: any, v: number) => (v == null ? "" : fmt(v)) },
          { label: "online stall", stroke: palette[0], width: 2, points: { show: true }, value: stallValue },
          { label: "belady stall (bound)", stroke: palette[1], width: 2, dash: [6, 4], points: { show: true }, value: stallValue },
        ],
        scales: { x: { time: false } },
        axes: [{ label: "device capacity", values: (_u: any, ticks: number[]) => ticks.map(fmt) }, { label: "stall (ms)", size: 70 }],
      },
      [t.capacityBytes, t.onlineStallSeconds.map(ms), t.beladyStallSeconds.map(ms)],
      box,
    );
    box.append(el("p", { class: "meta" }, "Stall: copy time the computation between a page's uses cannot hide (docs/policies.md says how it is estimated); no point: the trace does not run at that capacity."));
  }

  document.body.setAttribute("data-drawn", "true");
}
