// The console: a Preact single-page app built into dist/console, which the Worker serves as static
// assets (wrangler.toml [assets]). The API reference's script is copied beside it from the installed
// package, so /docs renders offline.
import { copyFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import preact from "@preact/preset-vite";
import { defineConfig } from "vite";

const require = createRequire(import.meta.url);
const outDir = join(import.meta.dirname, "../dist/console");

export default defineConfig({
  root: import.meta.dirname,
  plugins: [
    preact(),
    {
      name: "api-reference-script",
      closeBundle() {
        // The package exports no package.json: its entry is dist/index.js, the browser build beside it.
        const standalone = join(dirname(require.resolve("@scalar/api-reference")), "browser/standalone.js");
        mkdirSync(join(outDir, "docs"), { recursive: true });
        copyFileSync(standalone, join(outDir, "docs/scalar.js"));
      },
    },
  ],
  build: { outDir, emptyOutDir: true, assetsDir: "assets", sourcemap: false, target: "es2022" },
});
