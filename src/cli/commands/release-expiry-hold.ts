import type { Command } from "commander";
import { callRegistry, clientCommand, print, type RegistryFlags } from "../command-kit.js";

/** `muster release-expiry-hold`: the operator's override of mass-expiry protection. */
export function releaseExpiryHoldCommand(): Command {
  return clientCommand(
    "release-expiry-hold",
    "let silent instances expire although mass-expiry protection holds them (it re-arms once heartbeats return)",
    ["muster status   # expiry  HELD: 6 of 10 instances silent ...", "muster release-expiry-hold"],
  ).action(async (flags: RegistryFlags) => {
    const { wasHeld } = await callRegistry(flags, (client, options) => client.releaseExpiryHold({}, options));
    print(wasHeld ? "released: silent instances expire at their next check" : "nothing to release: expiry was not held");
  });
}
