import { describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { chromium } from "playwright-core";
import { POLICIES } from "../src/replay.js";

/**
 * The HTML report in a real headless browser (Debian's chromium, driven by playwright-core): it
 * opens with no network, logs no console error, and draws every chart: the timeline (uPlot canvas),
 * the capacity bars and one segment layout per policy. A screenshot is kept in test-output/ (ignored
 * by git) for a person to look at.
 */
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const outDir = join(repoRoot, "test-output");
const CANDIDATES = [process.env.CHROMIUM_PATH, "/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"];
const browserPath = CANDIDATES.find((p): p is string => p !== undefined && existsSync(p));
const skipReason = browserPath ? "" : `no Chromium found (tried ${CANDIDATES.filter(Boolean).join(", ")}; apt-get install chromium, or set CHROMIUM_PATH)`;
if (skipReason) console.warn(`report browser test skipped: ${skipReason}`);

describe.skipIf(!browserPath)("the HTML report in headless Chromium", () => {
  it("loads offline with no console errors and draws its charts", async () => {
    mkdirSync(outDir, { recursive: true });
    const html = join(outDir, "report.html");
    const cli = join(repoRoot, "packages/api/bin/lakebed.js");
    const sample = join(repoRoot, "samples/two_streams.def.pickle.gz");
    execFileSync(process.execPath, [cli, "compare", sample, "--policies", POLICIES.join(","), "--find-min-capacity", "--html", html, "--json"], { stdio: ["ignore", "pipe", "pipe"] });
    expect(readFileSync(html, "utf8")).not.toMatch(/<(script|link)[^>]+(src|href)=["']?https?:/);

    const browser = await chromium.launch({ executablePath: browserPath, args: ["--no-sandbox"] });
    try {
      const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
      const problems: string[] = [];
      page.on("console", (m) => {
        if (m.type() === "error") problems.push(`console error: ${m.text()}`);
      });
      page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
      // the report must not need the network: every request other than the file itself is refused
      await page.route("**/*", (route) => {
        const url = route.request().url();
        if (url.startsWith("file:")) return route.continue();
        problems.push(`network request: ${url}`);
        return route.abort();
      });
      await page.goto(pathToFileURL(html).href);
      await page.waitForSelector("body[data-drawn=true]", { timeout: 10_000 });

      expect(await page.locator("#timeline canvas").count()).toBeGreaterThan(0);
      const legend = await page.locator("#timeline .u-legend").innerText();
      for (const policy of POLICIES) expect(legend).toContain(`${policy} reserved`);
      // two bars (peak reserved, min capacity) per policy
      expect(await page.locator("#capacities svg rect").count()).toBe(2 * POLICIES.length);
      const sections = page.locator("section.policy");
      expect(await sections.count()).toBe(POLICIES.length);
      for (let i = 0; i < POLICIES.length; i++) {
        const section = sections.nth(i);
        expect(await section.locator("h2").innerText()).toContain(POLICIES[i]);
        expect(await section.locator("svg.layout rect").count()).toBeGreaterThan(1);
        expect(await section.locator("table.facts").innerText()).toMatch(/minimum capacity\s+\d/);
      }
      // the canvas holds a drawing, not a blank rectangle
      const inked = await page.evaluate(() => {
        const canvas = document.querySelector("#timeline canvas") as HTMLCanvasElement;
        const pixels = canvas.getContext("2d")!.getImageData(0, 0, canvas.width, canvas.height).data;
        let n = 0;
        for (let k = 3; k < pixels.length; k += 4) if (pixels[k] !== 0) n++;
        return n;
      });
      expect(inked).toBeGreaterThan(1000);
      await page.screenshot({ path: join(outDir, "report.png"), fullPage: true });
      expect(problems).toEqual([]);
    } finally {
      await browser.close();
    }
  });

  it("draws tiering's stall against capacity, online beside belady (lakebed tiering --html)", async () => {
    mkdirSync(outDir, { recursive: true });
    const html = join(outDir, "report-tiering.html");
    const cli = join(repoRoot, "packages/api/bin/lakebed.js");
    const trace = join(repoRoot, "test/fixtures/access/mlp_compiled.def.pickle.gz");
    execFileSync(process.execPath, [cli, "tiering", trace, "--points", "4", "--html", html, "--json"], { stdio: ["ignore", "pipe", "pipe"] });
    expect(readFileSync(html, "utf8")).not.toMatch(/<(script|link)[^>]+(src|href)=["']?https?:/);
    const browser = await chromium.launch({ executablePath: browserPath, args: ["--no-sandbox"] });
    try {
      const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
      const problems: string[] = [];
      page.on("console", (m) => {
        if (m.type() === "error") problems.push(`console error: ${m.text()}`);
      });
      page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
      await page.goto(pathToFileURL(html).href);
      await page.waitForSelector("body[data-drawn=true]", { timeout: 10_000 });
      const section = page.locator("section.tiering");
      expect(await section.count()).toBe(1);
      expect(await section.locator("h2").innerText()).toContain("stall against device capacity");
      const legend = await section.locator(".u-legend").innerText();
      expect(legend).toContain("online stall");
      expect(legend).toContain("belady stall");
      expect(await section.locator("table.facts").innerText()).toMatch(/runs at all from\s+\d/);
      // no per-policy sections or empty charts in a tiering report
      expect(await page.locator("section.policy").count()).toBe(0);
      expect(await page.locator("#timeline").count()).toBe(0);
      const inked = await page.evaluate(() => {
        const canvas = document.querySelector("section.tiering canvas") as HTMLCanvasElement;
        const pixels = canvas.getContext("2d")!.getImageData(0, 0, canvas.width, canvas.height).data;
        let n = 0;
        for (let k = 3; k < pixels.length; k += 4) if (pixels[k] !== 0) n++;
        return n;
      });
      expect(inked).toBeGreaterThan(1000);
      await page.screenshot({ path: join(outDir, "report-tiering.png"), fullPage: true });
      expect(problems).toEqual([]);
    } finally {
      await browser.close();
    }
  });

  it("shows above its charts what the replays could not reproduce (a trace with a CUDA graph pool)", async () => {
    mkdirSync(outDir, { recursive: true });
    const html = join(outDir, "report-private-pools.html");
    const cli = join(repoRoot, "packages/api/bin/lakebed.js");
    const trace = join(repoRoot, "test/fixtures/private-pools/graphs.pickle.gz");
    execFileSync(process.execPath, [cli, "compare", trace, "--policies", "caching,lakebed", "--html", html, "--json"], { stdio: ["ignore", "pipe", "pipe"] });
    const browser = await chromium.launch({ executablePath: browserPath, args: ["--no-sandbox"] });
    try {
      const page = await browser.newPage();
      const problems: string[] = [];
      page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
      await page.goto(pathToFileURL(html).href);
      await page.waitForSelector("body[data-drawn=true]", { timeout: 10_000 });
      expect(await page.locator("p.caveat").innerText()).toMatch(/^Note: the trace allocates from private memory pools \(device 0: 2 segments .* in CUDA graph pool \(1, 0\)\)/);
      expect(await page.locator("section.policy").count()).toBe(2);
      expect(problems).toEqual([]);
    } finally {
      await browser.close();
    }
  });

  it("draws the colocate report: strategies, SLO bars, dedup bars and one pool timeline per strategy", async () => {
    mkdirSync(outDir, { recursive: true });
    const html = join(outDir, "report-colocate.html");
    const cli = join(repoRoot, "packages/api/bin/lakebed.js");
    const scenario = join(repoRoot, "test/fixtures/scenarios/six-infer.json");
    execFileSync(process.execPath, [cli, "colocate", scenario, "--html", html, "--json"], { stdio: ["ignore", "pipe", "pipe"] });
    expect(readFileSync(html, "utf8")).not.toMatch(/<(script|link)[^>]+(src|href)=["']?https?:/);
    const browser = await chromium.launch({ executablePath: browserPath, args: ["--no-sandbox"] });
    try {
      const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
      const problems: string[] = [];
      page.on("console", (m) => {
        if (m.type() === "error") problems.push(`console error: ${m.text()}`);
      });
      page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
      await page.route("**/*", (route) => {
        const url = route.request().url();
        if (url.startsWith("file:")) return route.continue();
        problems.push(`network request: ${url}`);
        return route.abort();
      });
      await page.goto(pathToFileURL(html).href);
      await page.waitForSelector("body[data-drawn=true]", { timeout: 10_000 });
      // the four strategies, and handover again with the fingerprinted weights shared
      expect(await page.locator("#summary tr.strategy").count()).toBe(5);
      expect(await page.locator("#summary tr.strategy").last().innerText()).toContain("handover+dedup");
      expect(await page.locator("#bars svg rect").count()).toBe(5);
      // N = 1..8 copies, two bars each (alone, dedup)
      expect(await page.locator("#dedup svg rect").count()).toBe(16);
      expect(await page.locator("#dedup h2").innerText()).toContain("GLake");
      expect(await page.locator("section.pool-timeline canvas").count()).toBeGreaterThanOrEqual(5);
      const legend = await page.locator("section.pool-timeline .u-legend").first().innerText();
      for (const series of ["training", "inference", "reserve", "free", "shared"]) expect(legend).toContain(series);
      await page.screenshot({ path: join(outDir, "report-colocate.png"), fullPage: true });
      expect(problems).toEqual([]);
    } finally {
      await browser.close();
    }
  });
});
