import type { FilterSpec } from "./filter.js";
import type { Discovered } from "./registry-types.js";

interface Entry {
  readonly revision: number;
  readonly beats: number;
  readonly answer: Discovered;
}

/** How many answers the cache keeps, and how large one may be. */
export interface AnswerCacheLimits {
  /** Answers kept; the one computed longest ago goes first. Default 256. */
  readonly answers: number;
  /** Answers with more instances are not kept. Default 1,000. */
  readonly instancesPerAnswer: number;
}

export const defaultAnswerCacheLimits: AnswerCacheLimits = { answers: 256, instancesPerAnswer: 1_000 };

/**
 * Discover's recent answers, reused while they are exact. An answer shows
 * the registry's revision and each instance's last heartbeat, so it holds
 * until the revision moves or an instance of its service (of any service,
 * for a filter without one) beats. Callers polling the same filter then
 * share one answer object, which the server encodes once.
 *
 * Bounded by `AnswerCacheLimits`, so the worst case is their product in
 * references to records the registry holds anyway, plus one encoding each.
 */
export class AnswerCache {
  private readonly answers = new Map<string, Entry>();
  /** Beats so far per service with instances; a count only ever compared for equality. */
  private readonly serviceBeats = new Map<string, number>();
  private allBeats = 0;

  constructor(private readonly limits: AnswerCacheLimits = defaultAnswerCacheLimits) {}

  /** The cached answer to `spec` if it is still exact at `revision`, else `compute()`'s, kept for next time. */
  answer(spec: FilterSpec, revision: number, compute: () => Discovered): Discovered {
    const key = JSON.stringify([spec.service, spec.selector, spec.version, spec.capability, spec.includeUnhealthy, spec.tags]);
    const beats = this.beatsOf(spec.service);
    const cached = this.answers.get(key);
    if (cached !== undefined && cached.revision === revision && cached.beats === beats) return cached.answer;
    const answer = compute();
    this.answers.delete(key);
    if (answer.instances.length <= this.limits.instancesPerAnswer) {
      this.answers.set(key, { revision, beats, answer });
      if (this.answers.size > this.limits.answers) this.answers.delete(this.answers.keys().next().value as string);
    }
    return answer;
  }

  /** An instance of `service` has beaten: its last_heartbeat_at changed. */
  beaten(service: string): void {
    this.allBeats++;
    this.serviceBeats.set(service, (this.serviceBeats.get(service) ?? 0) + 1);
  }

  /**
   * The service has no instances left. Its count may restart from zero:
   * its removal moved the revision, so no answer that counted its beats
   * can be taken for current again.
   */
  forgetService(service: string): void {
    this.serviceBeats.delete(service);
  }

  private beatsOf(service: string): number {
    return service === "" ? this.allBeats : (this.serviceBeats.get(service) ?? 0);
  }
}
