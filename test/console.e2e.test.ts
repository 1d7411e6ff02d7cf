// The console in a real browser: Debian's chromium driven by playwright-core, headless, with
// only loopback. Sign in, upload a real PDF, watch it reach processed, read its chunks,
// search it, make a store and add the file, delete it, sign out. Skips when chromium is absent.
// RAGD_SCREENSHOTS=dir saves a screenshot of each view there (docs/console/ holds the README's).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { cleanup, ROOT, startRagd, type Ragd } from "./helpers/ragd";

const CHROMIUM = "/usr/bin/chromium";
const HAVE_CHROMIUM = existsSync(CHROMIUM);
if (!HAVE_CHROMIUM) console.warn("console tests skipped: /usr/bin/chromium is absent (apt-get install chromium)");
const SHOTS = process.env.RAGD_SCREENSHOTS;

describe.skipIf(!HAVE_CHROMIUM)("the console in chromium", () => {
  let ragd: Ragd;
  let browser: Browser;
  let page: Page;
  const problems: string[] = [];
  const shot = async (name: string) => {
    if (!SHOTS) return;
    mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: join(SHOTS, `${name}.png`) });
  };

  beforeAll(async () => {
    ragd = await startRagd();
    const { chromium } = await import("playwright-core");
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-gpu"] });
    page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
    // A CSP violation, a script error or a failed request is a defect of the console.
    page.on("console", (m) => m.type() === "error" && problems.push(`console: ${m.text()}`));
    page.on("pageerror", (e) => problems.push(`page: ${e.message}`));
    page.on("requestfailed", (r) => problems.push(`request failed: ${r.url()}`));
    // Nothing leaves the machine: every request the page makes goes to ragd.
    await page.route("**/*", (r) => (r.request().url().startsWith(ragd.url) ? r.continue() : (problems.push(`off-origin: ${r.request().url()}`), r.abort())));
  });

  afterAll(async () => {
    await browser?.close();
    await ragd?.stop();
    if (ragd) cleanup(ragd.dataDir);
  });

  test("a wrong key is refused; the right one shows the project", async () => {
    await page.goto(`${ragd.url}/`);
    await page.fill("#key", "sk-not-a-real-key-000000");
    await page.click("button[type=submit]");
    await page.waitForSelector("text=That key was refused.");
    problems.length = 0; // the 401 above is logged by the browser as a failed resource
    await page.fill("#key", ragd.key);
    await page.click("button[type=submit]");
    expect(await page.textContent("#project")).toBe("project default");
    expect(await page.evaluate(() => sessionStorage.getItem("ragd.key"))).toBe(ragd.key);
  });

  test("upload a real PDF: progress, then processed; its chunks with their pages", async () => {
    await page.setInputFiles("#picker", join(ROOT, "test/fixtures/docs/report.pdf"));
    await page.waitForSelector(".upload progress");
    await page.waitForSelector('#files tr[data-status="processed"]', { timeout: 30_000 });
    const row = page.locator("#files tbody tr").first();
    expect(await row.locator("td").nth(0).textContent()).toBe("report.pdf");
    expect(await row.locator("td").nth(2).textContent()).toBe("knowledge_base");
    expect(await page.textContent("#range")).toBe("1–1 of 1");
    await shot("files");
    await row.locator("a").click();
    await page.waitForSelector(".chunk");
    const chunks = await page.locator(".chunk").allTextContents();
    expect(chunks.join("\n")).toContain("Revenue grew by twelve percent in Europe.");
    expect(chunks.some((c) => /page 3/.test(c) && c.includes("Outlook"))).toBe(true);
    await shot("file");
  });

  test("search the knowledge base: ranked hits, words marked, location shown; the weight slider and filters apply", async () => {
    await page.click('a[data-view="search"]');
    await page.fill("#query", "revenue Europe");
    await page.click("button[type=submit]");
    await page.waitForSelector(".hit");
    const first = page.locator(".hit").first();
    expect(await first.locator("mark").allTextContents()).toEqual(["Revenue", "Europe"]);
    expect(await first.textContent()).toContain("report.pdf");
    expect(await first.textContent()).toContain("pages 1–2");
    await shot("search");
    // keywords only: the page-3 chunk has none of the words and drops out
    await page.locator("#weight").fill("0");
    await page.click("button[type=submit]");
    await page.waitForFunction(() => document.querySelectorAll(".hit").length === 1);
    // a filter on an attribute no file has finds nothing
    await page.fill("#filter-key", "team");
    await page.fill("#filter-value", "red");
    await page.click("button[type=submit]");
    await page.waitForSelector("text=0 results");
  });

  test("vector stores: create, add the file, watch its count, rename", async () => {
    await page.click('a[data-view="stores"]');
    await page.fill("#store-name", "reports");
    await page.click("form button[type=submit]");
    const row = page.locator("#stores tr", { hasText: "reports" });
    await row.waitFor();
    await row.locator("text=Add files").click();
    await page.check('#attach input[type="checkbox"]');
    await page.click("text=Add selected");
    await page.waitForFunction(() => [...document.querySelectorAll("#stores tr")].some((r) => r.textContent!.includes("reports") && r.textContent!.includes("1 of 1 ready")));
    page.once("dialog", (d) => d.accept("quarterly reports"));
    await row.locator("text=Rename").click();
    await page.locator("#stores tr", { hasText: "quarterly reports" }).waitFor();
    await shot("stores");
  });

  test("delete the file, then sign out", async () => {
    await page.click('a[data-view="files"]');
    await page.waitForSelector('#files tr[data-status="processed"]');
    page.once("dialog", (d) => d.accept());
    await page.locator("#files tbody tr").first().locator("text=Delete").click();
    await page.waitForSelector("text=No files yet.");
    expect((await ragd.client().files.list()).data).toEqual([]);
    await page.click("text=Sign out");
    await page.waitForSelector("#key");
    expect(await page.evaluate(() => sessionStorage.getItem("ragd.key"))).toBeNull();
  });

  test("no script error, CSP violation or request off this origin happened", () => {
    expect(problems).toEqual([]);
  });
});
