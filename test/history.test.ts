import { describe, expect, it } from "vitest";
import { continuesHistory, leadersHistory, maxAncestors, newHistory, branchedHistory, type History } from "../src/domain/history.js";

// Which (history, revision) a registry may resume a watcher from without a snapshot.

describe("histories", () => {
  it("resume a watcher of any ancestor only up to the revision every fork since shares", () => {
    const first = newHistory();
    const second = branchedHistory({ ...first, copied: true }, 10);
    const third = branchedHistory({ ...second, copied: true }, 20);
    expect([continuesHistory(third, third.id, 1_000), continuesHistory(third, second.id, 20), continuesHistory(third, second.id, 21)]).toEqual([true, true, false]);
    expect([continuesHistory(third, first.id, 10), continuesHistory(third, first.id, 11), continuesHistory(third, newHistory().id, 1)]).toEqual([true, false, false]);
    // A follower that takes on its leader's history at 15 shares the older one only up to 15.
    const followed = leadersHistory({ ...first, ancestors: [{ id: "older", revision: 30 }] }, second.id, 15);
    expect([followed.id, followed.copied, continuesHistory(followed, first.id, 15), continuesHistory(followed, "older", 16), continuesHistory(followed, "older", 15)]).toEqual([second.id, true, true, false, true]);
  });

  it(`keep the newest ${maxAncestors} forks`, () => {
    const first = newHistory();
    let history: History = first;
    for (let promotion = 1; promotion <= maxAncestors; promotion++) history = branchedHistory(history, promotion);
    expect([history.ancestors.length, continuesHistory(history, first.id, 1)]).toEqual([maxAncestors, true]);
    history = branchedHistory(history, maxAncestors + 1);
    expect([history.ancestors.length, continuesHistory(history, first.id, 1)]).toEqual([maxAncestors, false]);
  });
});
