import type { FilterSpec } from "./filter.js";
import type { Discovered } from "./registry-types.js";

interface Entry {
  readonly revision: number;
  readonly beats: number;
  readonly answer: Discovered;
}

/** How much the cache keeps; past either limit, the answers computed longest ago go first. */
export interface AnswerCacheLimits {
  /** Answers kept. Default 256. */
  readonly answers: number;
  /** Instances in all kept answers together; a larger answer is not kept. Default 20,000. */
  readonly instances: number;
}

/** 256 answers, and 20,000 instances in them all. */
export const defaultAnswerCacheLimits: AnswerCacheLimits = { answers: 256, instances: 20_000 };

/**
 * Discover's recent answers, reused while they are exact. An answer shows
 * the registry's revision and each instance's last heartbeat, so it holds
 * until the revision moves or an instance of its service (of any service,
 * for a filter without one) beats. Callers polling the same filter then
 * share one answer object, which the server encodes once.
 *
 * Bounded by `AnswerCacheLimits`: the records are the registry's own, so
 * what the cache adds is about one encoded instance (100-200 bytes) per
 * instance it counts.
 */
export class AnswerCache {
  private readonly answers = new Map<string, Entry>();
  /** Beats so far per service with instances; a count only ever compared for equality. */
  private readonly serviceBeats = new Map<string, number>();
  private allBeats = 0;
  private instancesKept = 0;

  constructor(private readonly limits: AnswerCacheLimits = defaultAnswerCacheLimits) {}

  /** The cached answer to `spec` if it is still exact at `revision`, else `compute()`'s, kept for next time. */
  answer(spec: FilterSpec, revision: number, compute: () => Discovered): Discovered {
    const key = JSON.stringify([spec.service, spec.selector, spec.version, spec.capability, spec.zone, spec.includeUnhealthy, spec.includeDrained, spec.tags]);
    const beats = this.beatsOf(spec.service);
    const cached = this.answers.get(key);
    if (cached !== undefined && cached.revision === revision && cached.beats === beats) return cached.answer;
    const answer = compute();
    if (cached !== undefined) this.drop(key, cached);
    if (answer.instances.length <= this.limits.instances) {
      this.answers.set(key, { revision, beats, answer });
      this.instancesKept += answer.instances.length;
      for (const [oldest, entry] of this.answers) {
        if (this.answers.size <= this.limits.answers && this.instancesKept <= this.limits.instances) break;
        this.drop(oldest, entry);
      }
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

  /** The whole state was replaced (a follower's snapshot): no kept answer is known to be exact any more. */
  clear(): void {
    this.answers.clear();
    this.instancesKept = 0;
  }

  private drop(key: string, entry: Entry): void {
    this.answers.delete(key);
    this.instancesKept -= entry.answer.instances.length;
  }

  private beatsOf(service: string): number {
    return service === "" ? this.allBeats : (this.serviceBeats.get(service) ?? 0);
  }
}
