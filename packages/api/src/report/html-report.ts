import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { drawReport } from "./report-client.js";
import type { ReportData } from "./report-data.js";

const require = createRequire(import.meta.url);

/** uPlot (MIT), inlined so that the report opens with no network. */
function uplotAssets(): { script: string; css: string } {
  return {
    script: readFileSync(require.resolve("uplot/dist/uPlot.iife.min.js"), "utf8"),
    css: readFileSync(require.resolve("uplot/dist/uPlot.min.css"), "utf8"),
  };
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** `</script>` inside embedded JSON would end the script element early. */
const embedJson = (value: unknown) => JSON.stringify(value).replace(/</g, "\\u003c");

/** Renders the report as one self-contained HTML document. */
export function renderHtmlReport(data: ReportData): string {
  const { script, css } = uplotAssets();
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(data.title)}</title>
<style>${css}
body { font: 14px/1.4 system-ui, sans-serif; margin: 20px; color: #222; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 28px; } h3 { font-size: 13px; font-weight: normal; color: #555; }
table.facts th { text-align: left; font-weight: normal; color: #555; padding-right: 16px; }
svg.chart text { font: 12px system-ui, sans-serif; fill: #222; }
.meta { color: #666; }
.caveat { background: #fff4e0; border-left: 4px solid #e69500; padding: 6px 10px; }
</style>
</head>
<body>
<h1>${escapeHtml(data.title)}</h1>
<p class="meta">${escapeHtml(data.file)}: ${data.events.toLocaleString("en-US")} events; generated ${escapeHtml(data.generatedAt)} by lakebed</p>
<div id="report"></div>
<script type="application/json" id="report-data">${embedJson(data)}</script>
<script>${script}</script>
<script>
(${drawReport.toString()})(JSON.parse(document.getElementById("report-data").textContent), uPlot);
</script>
</body>
</html>
`;
}
