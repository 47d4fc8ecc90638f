// Bundles the verify page: src/page.js (with verify.js and the libraries) -> dist/app.js, one
// minified IIFE; and dist/LICENSES.txt, the licences of every package inside the bundle.
//
//   cd serve/verify-page && npm ci && node build.mjs
//
// Deterministic: the same sources and package versions (package-lock.json) give the same bytes,
// so a check can rebuild and compare with the committed dist/app.js.

import { build } from "esbuild";
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
const DIST = join(HERE, "dist");
mkdirSync(DIST, { recursive: true });

const result = await build({
  absWorkingDir: HERE,
  entryPoints: ["src/page.js"],
  outfile: "dist/app.js",
  bundle: true,
  format: "iife",
  platform: "browser",
  target: "es2020",
  minify: true,
  sourcemap: false,
  legalComments: "none", // the licences are in dist/LICENSES.txt instead
  charset: "utf8",
  metafile: true,
  logLevel: "warning",
  define: { "process.env.NODE_ENV": '"production"' },
});

// Which packages ended up in the bundle (from esbuild's own account of its inputs).
const packageDirs = new Set();
for (const input of Object.keys(result.metafile.inputs)) {
  const match = input.match(/^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//);
  if (match) packageDirs.add(match[1]);
}
const packages = [...packageDirs].map((dir) => {
  const meta = JSON.parse(readFileSync(join(HERE, dir, "package.json"), "utf8"));
  const licenceFile = readdirSync(join(HERE, dir)).find((f) => /^(licen[cs]e|copying)(\.|$)/i.test(f));
  return {
    name: meta.name,
    version: meta.version,
    license: typeof meta.license === "string" ? meta.license : JSON.stringify(meta.license),
    text: licenceFile ? readFileSync(join(HERE, dir, licenceFile), "utf8").trim() : "(no licence file in the package)",
  };
}).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

const lines = [
  "Third-party packages bundled into dist/app.js (the verify page), with their licences.",
  "The page's own code is MIT OR Apache-2.0.",
  "",
  ...packages.map((p) => `${p.name} ${p.version}: ${p.license}`),
];
for (const p of packages) {
  lines.push("", "=".repeat(78), `${p.name} ${p.version} (${p.license})`, "=".repeat(78), p.text);
}
writeFileSync(join(DIST, "LICENSES.txt"), lines.join("\n") + "\n");

const size = readFileSync(join(DIST, "app.js")).length;
console.log(`dist/app.js: ${size} bytes; ${packages.length} bundled packages: ${packages.map((p) => p.name).join(", ")}`);
console.log(`dist/LICENSES.txt written (${relative(HERE, join(DIST, "LICENSES.txt"))})`);
