import { execFileSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { pythonWithGrpc } from "./support/python.js";

/**
 * Builds dist/ once (`npm run build`), so process tests run exactly what `npm start` runs, and
 * makes sure Debian's Python gRPC packages are there for the Python proof
 * (installing them as root, as on this project's machines).
 */
export default function setup(): void {
  execFileSync("npm", ["run", "--silent", "build"], { stdio: ["ignore", "ignore", "inherit"] });
  const hasGrpc = () => spawnSync(pythonWithGrpc, ["-c", "import grpc, grpc_tools"]).status === 0;
  if (!hasGrpc() && process.getuid?.() === 0 && existsSync("/usr/bin/apt-get")) {
    console.log("installing Debian's python3-grpcio and python3-grpc-tools for the Python proof");
    const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
    execFileSync("apt-get", ["update"], { stdio: "ignore", env });
    execFileSync("apt-get", ["install", "-y", "--no-install-recommends", "python3-grpcio", "python3-grpc-tools"], { stdio: "ignore", env });
  }
}
