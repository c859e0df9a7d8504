import { describe, expect, it } from "vitest";
import { parseSelector, selectorMatches } from "../src/domain/selector.js";

const labels = { env: "prod", tier: "web", "app.kubernetes.io/name": "shop", empty: "" };

describe("label selectors", () => {
  it.each([
    ["", true],
    ["env=prod", true],
    ["env==prod", true],
    ["env = prod , tier = web", true],
    ["env!=prod", false],
    ["env!=dev", true],
    ["missing!=x", true],
    ["tier in (web, api)", true],
    ["tier in (api)", false],
    ["tier notin (api,db)", true],
    ["tier notin (web)", false],
    ["missing notin (web)", true],
    ["missing in (web)", false],
    ["env", true],
    ["missing", false],
    ["!missing", true],
    ["!env", false],
    ["app.kubernetes.io/name=shop", true],
    ["empty=", true],
    ["empty in (,x)", true],
    ["env=prod,!canary,tier in (web)", true],
    ["env=prod,tier=api", false],
  ])("%j matches: %s", (text, expected) => {
    expect(selectorMatches(parseSelector("selector", text), labels)).toBe(expected);
  });

  it.each(["env=prod,", ",env", "env in web", "env in (a", "env notin", "= x", "!", "env in ()x", "a b", "env=(x)"])(
    "rejects %j naming the field and position",
    (text) => {
      expect(() => parseSelector("selector", text)).toThrow(/^selector: /);
    },
  );

  it.each([
    ["env in (prod", "expected ')' to close the list of values at character 13"],
    ["env in (prod web)", "expected ',' or ')' in the list of values at character 14"],
    ["env=prod tier=web", "expected ',' between requirements at character 10"],
    ["env in prod", "expected '(' at character 8"],
  ])("says what %j lacks, and where", (text, explained) => {
    expect(() => parseSelector("selector", text)).toThrow(`: ${explained} (got ${JSON.stringify(text)})`);
  });
});
