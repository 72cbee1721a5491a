/**
 * test/support/browser.ts defines `describeBrowser` from Jest's `describe` when it is loaded; outside
 * Jest (scripts/screenshots.ts) there is none, so a stand-in is set before that module is evaluated.
 */
const g = globalThis as { describe?: unknown };
g.describe ??= Object.assign(() => undefined, { skip: () => undefined });
export {};
