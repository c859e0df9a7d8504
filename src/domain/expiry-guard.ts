/** When mass-expiry protection steps in. */
export interface ExpiryGuardPolicy {
  /** The share of instances silent at once that holds expiry. Default 0.5. */
  readonly threshold: number;
  /** Registries smaller than this expire normally. Default 3. */
  readonly minInstances: number;
}

/** Hold expiry when half or more of the instances fall silent at once (more likely the network than the fleet), in a registry of 3 or more. */
export const defaultExpiryGuardPolicy: ExpiryGuardPolicy = { threshold: 0.5, minInstances: 3 };

/** The guard's standing, for status pages and logs. */
export interface ExpiryHoldState {
  /** Removals are held: silent instances are marked UNHEALTHY but not expired. */
  readonly holding: boolean;
  /** An operator released the hold; it re-arms once the silent share drops below the threshold. */
  readonly released: boolean;
  readonly silent: number;
  readonly instances: number;
}

/**
 * Mass-expiry protection. When a large share of the fleet goes silent at
 * once, the likely fault is the registry's own network, not the fleet, and
 * expiring everyone would turn a blip into an outage. So removals wait
 * (UNHEALTHY marks still flow to watchers) until heartbeats return or an
 * operator releases the hold.
 */
export class ExpiryGuard {
  private state: ExpiryHoldState = { holding: false, released: false, silent: 0, instances: 0 };

  constructor(
    private readonly policy: ExpiryGuardPolicy,
    private readonly onChange: (state: ExpiryHoldState) => void,
  ) {}

  /** Decides, for one sweep, whether removals are held. */
  evaluate(silent: number, instances: number): boolean {
    const massSilence = instances >= this.policy.minInstances && silent >= this.policy.threshold * instances;
    const released = this.state.released && massSilence;
    const holding = massSilence && !released;
    const changed = holding !== this.state.holding || released !== this.state.released;
    this.state = { holding, released, silent, instances };
    if (changed) this.onChange(this.state);
    return holding;
  }

  /** An operator's override: expire silent instances despite the mass silence. */
  release(): boolean {
    const wasHolding = this.state.holding;
    if (wasHolding) {
      this.state = { ...this.state, holding: false, released: true };
      this.onChange(this.state);
    }
    return wasHolding;
  }

  current(): ExpiryHoldState {
    return this.state;
  }
}
