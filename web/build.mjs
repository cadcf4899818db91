// Bundle the viewer into dist/: one page (index.html), its script and stylesheet with content
// hashes in their names, and the DASH player as a chunk loaded only when DASH is played.
// Everything the page runs comes from here: no CDN at run time.
import { build } from "esbuild";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.dirname(fileURLToPath(import.meta.url));
const dist = path.join(root, "dist");
const optimize = process.argv.includes("--dev") ? {} : { minify: true };

await rm(dist, { recursive: true, force: true });
await mkdir(dist, { recursive: true });

const result = await build({
  absWorkingDir: root,
  entryPoints: { app: "src/main.mts" },
  bundle: true,
  splitting: true,
  format: "esm",
  target: ["es2020", "chrome100", "firefox100", "safari15"],
  outdir: path.join(dist, "assets"),
  entryNames: "[name]-[hash]",
  chunkNames: "chunk-[hash]",
  assetNames: "[name]-[hash]",
  sourcemap: true,
  metafile: true,
  legalComments: "linked",
  logLevel: "warning",
  ...optimize,
});

// The entry's script and the stylesheet it imports, by their hashed names.
let script;
let style;
for (const [file, output] of Object.entries(result.metafile.outputs)) {
  if (output.entryPoint === "src/main.mts" && file.endsWith(".js")) script = file;
  if (file.endsWith(".css")) style = file;
}
if (!script || !style) throw new Error("the build produced no app script or stylesheet");
const asset = (file) => "assets/" + path.basename(file);

const page = (await readFile(path.join(root, "src/index.html"), "utf8"))
  .replace("%APP_SCRIPT%", asset(script))
  .replace("%APP_STYLE%", asset(style));
await writeFile(path.join(dist, "index.html"), page);
console.log(`web viewer built into ${path.relative(process.cwd(), dist) || "."}`);
