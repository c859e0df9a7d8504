#!/usr/bin/env node
import module from "node:module";

/*
 * The `muster` executable. Node 22 and later can keep compiled code between
 * runs, which roughly halves what loading the CLI costs; Node 20 has no such
 * cache, so there this does nothing. It has to happen before the rest of the
 * CLI is loaded, hence the dynamic import.
 */
(module as { enableCompileCache?: () => unknown }).enableCompileCache?.();
await import("./main.js");
