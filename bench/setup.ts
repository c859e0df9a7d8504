import { execFileSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";

/** Builds dist/ (`npm run build`; the benchmark runs the `muster` binary) and installs h2load if it is missing. */
export default function setup(): void {
  execFileSync("npm", ["run", "--silent", "build"], { stdio: ["ignore", "ignore", "inherit"] });
  if (spawnSync("h2load", ["--version"]).status === 0) return;
  if (process.getuid?.() !== 0 || !existsSync("/usr/bin/apt-get")) throw new Error("h2load is missing: apt-get install nghttp2-client");
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  execFileSync("apt-get", ["update"], { stdio: "ignore", env });
  execFileSync("apt-get", ["install", "-y", "--no-install-recommends", "nghttp2-client"], { stdio: "ignore", env });
}
