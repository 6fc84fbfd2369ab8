/**
 * The dashboard's performance target (issue 12), measured in the same headless
 * Chromium as its tests: with 10,000 nodes and 1,000 keys, the time to the first
 * render of the nodes page (navigation to the table showing its first rows and the
 * count), the time to scroll to its end (the End key to the last node drawn), and
 * the dashboard's JavaScript size, gzipped. Targets: < 1 s, < 300 ms, < 250 KB.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { gzipSync } from 'node:zlib';
import { chromium } from 'playwright-core';
import { MusterServer } from '../src/server/muster-server.js';
import { defaultUiDir } from '../src/server/ui/ui-assets.js';
import { findChromium, CHROMIUM_INSTALL_HINT } from '../test/support/find-chromium.js';
import { writeFleet } from './fleet.js';
import type { Measurement, Ratio, Scenario, ScenarioResult } from './scenario.js';
import { ratio } from './scenario.js';

const NODES = 10_000;
const KEYS = 1_000;
const ROUNDS = 5;

/**
 * Set in the page before its own script runs: when the first node row is drawn
 * (a MutationObserver), on the page's clock, so the phases below share it.
 */
const RENDER_PROBE = `
  document.addEventListener('DOMContentLoaded', () => {
    const seen = new MutationObserver(() => {
      if (document.querySelector('.vspace > .vrow')) {
        window.__musterFirstRow = performance.now();
        seen.disconnect();
      }
    });
    seen.observe(document.body, { childList: true, subtree: true });
  });
`;

/** Where a page load's time went, in ms from navigation start (the page's clock). */
interface Phases {
  script: number;
  whoami: number;
  nodesAsked: number;
  nodesAnswered: number;
  nodesKB: number;
  drawn: number;
}

const PHASES_SCRIPT = `(() => {
  const entries = performance.getEntriesByType('resource');
  const find = (part) => entries.find((e) => e.name.includes(part));
  const script = entries.find((e) => e.name.endsWith('.js'));
  const whoami = find('/v1/auth/whoami');
  const nodes = find('/v1/nodes');
  return {
    script: script ? script.responseEnd : -1,
    whoami: whoami ? whoami.responseEnd : -1,
    nodesAsked: nodes ? nodes.startTime : -1,
    nodesAnswered: nodes ? nodes.responseEnd : -1,
    nodesKB: nodes ? nodes.transferSize / 1024 : -1,
    drawn: window.__musterFirstRow ?? -1,
  };
})()`;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

export const dashboardBench: Scenario = {
  name: 'dashboard',
  title: `dashboard in headless Chromium, ${NODES} nodes and ${KEYS} keys: first render, scroll to the end, JS size`,
  requires: [{ binary: 'chromium', installHint: `install Chromium with \`${CHROMIUM_INSTALL_HINT}\`` }],
  async run(_settings, log): Promise<ScenarioResult> {
    const uiDir = defaultUiDir();
    if (uiDir === null) throw new Error('the dashboard is not built: npm run build');
    const js = readdirSync(join(uiDir, 'assets')).filter((f) => f.endsWith('.js'));
    const jsGzip = js.reduce(
      (sum, f) => sum + gzipSync(readFileSync(join(uiDir, 'assets', f)), { level: 9 }).length,
      0,
    );
    const server = await MusterServer.start({
      store: { kind: 'sqlite', dataDir: ':memory:' },
      port: 0,
      logger: false,
      auth: 'off',
    });
    const browser = await chromium.launch({
      executablePath: findChromium() ?? 'chromium',
      headless: true,
      args: ['--no-sandbox', '--disable-dev-shm-usage'],
    });
    try {
      await writeFleet(server.backend, NODES);
      for (let i = 0; i < KEYS; i += 100) {
        const ops = [];
        for (let k = i; k < i + 100; k++) {
          ops.push({
            type: 'put' as const,
            key: `/config/app-${k % 20}/key-${k}`,
            value: new TextEncoder().encode(`value ${k}`),
          });
        }
        await server.backend.txn({ compare: [], success: ops, failure: [] });
      }
      // The list's cost with and without facts, straight from the server.
      const listing: string[] = [];
      for (const query of ['', '?facts=false']) {
        const started = performance.now();
        const body = await (await fetch(`${server.url}/v1/nodes${query}`)).text();
        listing.push(
          `GET /v1/nodes${query}: ${(body.length / 1024).toFixed(0)} KB in ${(performance.now() - started).toFixed(0)} ms`,
        );
      }
      const renders: number[] = [];
      const scrolls: number[] = [];
      const phases: Phases[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
        await page.addInitScript(RENDER_PROBE);
        const started = performance.now();
        await page.goto(`${server.url}/ui/#/nodes`);
        await page.getByText(`${NODES} nodes`).waitFor({ timeout: 60_000 });
        await page.locator('.vspace > .vrow').first().waitFor();
        renders.push(performance.now() - started);
        const phase = await page.evaluate<Phases>(PHASES_SCRIPT);
        phases.push(phase);
        await page.locator('.vbox').focus();
        const scrollStart = performance.now();
        await page.keyboard.press('End');
        await page.getByText(`node-${String(NODES - 1).padStart(5, '0')}`).waitFor();
        scrolls.push(performance.now() - scrollStart);
        log(
          `round ${round + 1}: first render ${renders.at(-1)!.toFixed(0)} ms, scroll to the end ${scrolls.at(-1)!.toFixed(0)} ms; ${describePhases(phase)}`,
        );
        await page.close();
      }
      const render = median(renders);
      const scroll = median(scrolls);
      const row = (operation: string, ms: number, samples: number[]): Measurement => ({
        system: 'dashboard (Chromium)',
        operation,
        requests: samples.length,
        seconds: samples.reduce((a, b) => a + b, 0) / 1000,
        reqPerSec: 0,
        p50Ms: ms,
        p99Ms: Math.max(...samples),
        maxMs: Math.max(...samples),
        errors: 0,
        serverCpuPercent: null,
        machineBusyPercent: null,
      });
      const ratios: Ratio[] = [
        ratio('nodes page first render, ms (median of 5)', Math.round(render), 1000, 'at-most'),
        ratio('scroll to the last of 10,000 nodes, ms (median of 5)', Math.round(scroll), 300, 'at-most'),
        ratio('dashboard JavaScript, KB gzipped', Math.round(jsGzip / 1024), 250, 'at-most'),
      ];
      return {
        load: `${ROUNDS} page loads of #/nodes with ${NODES} registered nodes (a third down, each with the facts a real agent reports) and ${KEYS} keys; the page fetches every node without its facts and draws the rows in view`,
        measurements: [row('first render', render, renders), row('scroll to end', scroll, scrolls)],
        ratios,
        notes: [
          `JavaScript: ${js.length} file(s), ${(jsGzip / 1024).toFixed(1)} KB gzipped`,
          `first render, median phases: ${describePhases(medianPhases(phases))}`,
          ...listing,
        ],
      };
    } finally {
      await browser.close();
      await server.stop();
    }
  },
};

function describePhases(p: Phases): string {
  const ms = (n: number) => `${Math.round(n)}`;
  return (
    `in the page: script ${ms(p.script)}, signed-in check ${ms(p.whoami)}, nodes asked ${ms(p.nodesAsked)}, ` +
    `answered ${ms(p.nodesAnswered)} (${ms(p.nodesAnswered - p.nodesAsked)} ms, ${ms(p.nodesKB)} KB), ` +
    `first row drawn ${ms(p.drawn)} ms`
  );
}

function medianPhases(all: Phases[]): Phases {
  const of = (key: keyof Phases) => median(all.map((p) => p[key]));
  return {
    script: of('script'),
    whoami: of('whoami'),
    nodesAsked: of('nodesAsked'),
    nodesAnswered: of('nodesAnswered'),
    nodesKB: of('nodesKB'),
    drawn: of('drawn'),
  };
}
