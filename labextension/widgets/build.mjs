// Builds the anywidget front ends into the Python package (nbflow/notebook/widgets/static/).
//
//   viz.js        Graphviz compiled to WebAssembly (@viz-js/viz, WASM inlined). It is the
//                 _esm of one small model per kernel (VizRuntime), so its ~1.5 MB travel
//                 once, not with every dashboard.
//   dashboard.js  the dashboard view; it reaches Graphviz through the runtime's exports.
//   dashboard.css its styles.
//
// `node widgets/build.mjs --watch` rebuilds on change (pair it with ANYWIDGET_HMR=1).
import * as esbuild from "esbuild";
import { fileURLToPath } from "node:url";

const here = (p) => fileURLToPath(new URL(p, import.meta.url));

const options = {
  entryPoints: [
    { in: here("./viz.js"), out: "viz" },
    { in: here("./dashboard/index.js"), out: "dashboard" },
    { in: here("./dashboard/dashboard.css"), out: "dashboard" },
  ],
  outdir: here("../../nbflow/notebook/widgets/static"),
  bundle: true,
  format: "esm",
  minify: true,
  target: ["es2022"],
  logLevel: "warning",
};

if (process.argv.includes("--watch")) {
  options.logLevel = "info";
  await (await esbuild.context(options)).watch();
} else {
  await esbuild.build(options);
}
