// Builds the package: the native addon (node-gyp), then the TypeScript (tsup).
//
// - Node's headers: taken from beside the running node (<prefix>/include/node), as both distro
//   packages and the official tarballs ship them, so no download is needed; without them node-gyp
//   downloads the headers for this Node version.
// - CUDA: the addon never links libcuda, and builds without a toolkit. When cuda.h is found
//   (CUDA_HOME, CUDA_PATH, /usr/local/cuda), cuda_abi_check.cc is compiled in to prove that the
//   hand-written driver declarations match it.
// - Incremental: configure runs only when its inputs changed; make rebuilds what changed.
// - LAKEBED_SKIP_NATIVE=1 skips the addon (the host and cuda drivers then report "not built").
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const pkgRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(join(pkgRoot, "package.json"));

function run(command, args, what) {
  const r = spawnSync(command, args, { cwd: pkgRoot, stdio: "inherit" });
  if (r.status !== 0) {
    console.error(`\n@lakebed/native-cuda: ${what} failed (exit ${r.status ?? r.signal}).`);
    return false;
  }
  return true;
}

function binOf(pkg, name) {
  const manifestPath = require.resolve(`${pkg}/package.json`);
  const manifest = JSON.parse(readFileSync(manifestPath, "utf8"));
  const bin = typeof manifest.bin === "string" ? manifest.bin : manifest.bin[name];
  return join(dirname(manifestPath), bin);
}

function nodeHeadersPrefix() {
  const prefix = resolve(dirname(process.execPath), "..");
  return existsSync(join(prefix, "include", "node", "node_api.h")) ? prefix : null;
}

function cudaInclude() {
  const roots = [process.env.CUDA_HOME, process.env.CUDA_PATH, "/usr/local/cuda"].filter(Boolean);
  for (const root of roots) {
    if (existsSync(join(root, "include", "cuda.h"))) return join(root, "include");
  }
  return null;
}

function buildAddon() {
  const nodeGyp = binOf("node-gyp", "node-gyp");
  const nodedir = nodeHeadersPrefix();
  const cuda = cudaInclude();
  const configureArgs = [nodeGyp, "configure", ...(nodedir ? [`--nodedir=${nodedir}`] : [])];
  if (cuda) configureArgs.push("--", `-Dcuda_include=${cuda}`);
  const stampPath = join(pkgRoot, "build", "lakebed-configure.json");
  const stamp = JSON.stringify({ configureArgs, node: process.version });
  const gypTime = statSync(join(pkgRoot, "binding.gyp")).mtimeMs;
  const fresh =
    existsSync(stampPath) &&
    readFileSync(stampPath, "utf8") === stamp &&
    statSync(stampPath).mtimeMs >= gypTime;
  console.error(
    `@lakebed/native-cuda: building the addon (node headers: ${nodedir ?? "downloaded by node-gyp"}; ` +
      `cuda.h: ${cuda ?? "not found, ABI check skipped"})`,
  );
  if (!fresh) {
    if (!run(process.execPath, configureArgs, "node-gyp configure")) return false;
    writeFileSync(stampPath, stamp);
  }
  return run(process.execPath, [nodeGyp, "build", "--jobs=max"], "node-gyp build");
}

if (process.env.LAKEBED_SKIP_NATIVE === "1") {
  console.error("@lakebed/native-cuda: LAKEBED_SKIP_NATIVE=1, the native addon is not built");
} else if (!buildAddon()) {
  console.error(
    "Building the native addon needs python3, make and a C++17 compiler (g++ or clang++).\n" +
      "Install them and run `npm run build -w @lakebed/native-cuda` again, or set\n" +
      "LAKEBED_SKIP_NATIVE=1 to build without the native drivers.",
  );
  process.exit(1);
}
if (!run(process.execPath, [binOf("tsup", "tsup")], "tsup")) process.exit(1);
