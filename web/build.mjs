// Builds the NHS.UK frontend assets the clinician web interface serves from /web/static/nhsuk/.
//
// Run by scripts/setup-venv (after `npm ci` here); by hand: `cd web && npm ci && node build.mjs`.
// Output: src/safeguarding/web/static/ (build output, gitignored). Nothing is fetched from a CDN at run
// time: the stylesheet's @font-face rules (Frutiger from assets.nhs.uk, a licensed font the npm package
// does not ship) are removed, so text falls back to Arial as NHS.UK frontend specifies, and the
// stylesheet's /assets/ URLs are made relative to where the images are copied.
import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const pkg = join(here, "node_modules", "nhsuk-frontend");
const dist = join(pkg, "dist", "nhsuk");
const out = join(here, "..", "src", "safeguarding", "web", "static");
const version = JSON.parse(readFileSync(join(pkg, "package.json"), "utf8")).version;

rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, "nhsuk", "assets", "images"), { recursive: true });

let css = readFileSync(join(dist, "nhsuk-frontend.min.css"), "utf8");
const fontFaces = css.match(/@font-face\{[^}]*\}/g) || [];
css = css.replace(/@font-face\{[^}]*\}/g, "");
css = css.replaceAll("url(/assets/", "url(assets/");
css = css.replace(/\/\*# sourceMappingURL=[^*]*\*\/\s*$/, "");
const external = css.match(/url\((["']?)(https?:)?\/\/[^)]*\)/g);
if (external) {
  console.error(`build.mjs: the stylesheet still refers to other hosts: ${external.join(", ")}`);
  process.exit(1);
}
writeFileSync(join(out, "nhsuk", "nhsuk-frontend.min.css"), css);

let js = readFileSync(join(dist, "nhsuk-frontend.min.js"), "utf8");
js = js.replace(/\/\/# sourceMappingURL=\S*\s*$/, "");
writeFileSync(join(out, "nhsuk", "nhsuk-frontend.min.js"), js);

const images = join(dist, "assets", "images");
for (const name of readdirSync(images)) {
  if (/\.(svg|png|ico)$/.test(name) && !name.includes("opengraph")) {
    copyFileSync(join(images, name), join(out, "nhsuk", "assets", "images", name));
  }
}

writeFileSync(join(out, "BUILD.json"), JSON.stringify({ "nhsuk-frontend": version, "font-faces-removed": fontFaces.length }, null, 2) + "\n");
console.log(`built NHS.UK frontend ${version} into ${out}`);
