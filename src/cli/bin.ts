#!/usr/bin/env node
import module from "node:module";
import v8 from "node:v8";

/*
 * The `muster` executable. Two process-wide settings come first, before the
 * rest of the CLI is loaded (hence the dynamic import):
 *
 * - V8's allocation-site pretenuring is off. A burst of calls (thousands of
 *   registrations in flight at once) makes V8 decide that the request path's
 *   objects live long and allocate them straight into the old generation;
 *   once the burst is over they die young there, keep young objects alive
 *   through their stale pointers, and every scavenge promotes about 1.3 MB
 *   instead of 0.25 MB. Measured after 10,000 registrations: Discover p99 at
 *   2,000 req/s 3.0-3.2 ms without it against 6.7-24 ms with it, and no
 *   throughput lost (BENCHMARKS.md, "Garbage collection"). V8 reads the flag
 *   at each collection, so setting it at start-up takes effect.
 * - Node 22 and later can keep compiled code between runs, which roughly
 *   halves what loading the CLI costs; Node 20 has no such cache.
 */
v8.setFlagsFromString("--no-allocation-site-pretenuring");
(module as { enableCompileCache?: () => unknown }).enableCompileCache?.();
await import("./main.js");
