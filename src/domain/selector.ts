import { checkLabelKey, checkLabelValue } from "./rules.js";
import { RegistryError } from "./registry-error.js";

/** One clause of a label selector. */
export type Requirement =
  | { readonly key: string; readonly op: "exists" | "not-exists" }
  | { readonly key: string; readonly op: "in" | "not-in"; readonly values: ReadonlySet<string> };

/**
 * A parsed Kubernetes label selector: every requirement must hold.
 * Syntax: `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`,
 * joined by commas.
 */
export type Selector = readonly Requirement[];

/** Parses selector text, throwing INVALID_ARGUMENT for `field` on bad syntax. */
export function parseSelector(field: string, text: string): Selector {
  const parser = new SelectorParser(field, text);
  return parser.parse();
}

/** True when `labels` satisfy every requirement of the selector. */
export function selectorMatches(selector: Selector, labels: Readonly<Record<string, string>>): boolean {
  return selector.every((requirement) => {
    const value = Object.hasOwn(labels, requirement.key) ? labels[requirement.key] : undefined;
    switch (requirement.op) {
      case "exists":
        return value !== undefined;
      case "not-exists":
        return value === undefined;
      case "in":
        return value !== undefined && requirement.values.has(value);
      case "not-in":
        return value === undefined || !requirement.values.has(value);
    }
  });
}

const wordPattern = /[^\s,()=!]+/y;

class SelectorParser {
  private position = 0;

  constructor(
    private readonly field: string,
    private readonly text: string,
  ) {}

  parse(): Selector {
    const requirements: Requirement[] = [];
    this.skipSpace();
    if (this.atEnd()) return requirements;
    for (;;) {
      requirements.push(this.requirement());
      this.skipSpace();
      if (this.atEnd()) return requirements;
      if (!this.take(",")) throw this.error("expected ',' between requirements");
    }
  }

  private requirement(): Requirement {
    this.skipSpace();
    if (this.take("!")) return { key: this.key(), op: "not-exists" };
    const key = this.key();
    this.skipSpace();
    if (this.take("!=")) return { key, op: "not-in", values: new Set([this.value()]) };
    if (this.take("==") || this.take("=")) return { key, op: "in", values: new Set([this.value()]) };
    const save = this.position;
    const word = this.word();
    if (word === "in" || word === "notin") {
      return { key, op: word === "in" ? "in" : "not-in", values: this.valueSet() };
    }
    this.position = save;
    return { key, op: "exists" };
  }

  private valueSet(): ReadonlySet<string> {
    this.skipSpace();
    this.expect("(");
    const values = new Set<string>();
    for (;;) {
      values.add(this.value());
      this.skipSpace();
      if (this.take(")")) return values;
      if (!this.take(",")) throw this.error(this.atEnd() ? "expected ')' to close the list of values" : "expected ',' or ')' in the list of values");
    }
  }

  private key(): string {
    this.skipSpace();
    const key = this.word();
    if (key === "") throw this.error("expected a label key");
    checkLabelKey(this.field, key);
    return key;
  }

  private value(): string {
    this.skipSpace();
    const value = this.word();
    checkLabelValue(this.field, value);
    return value;
  }

  private word(): string {
    wordPattern.lastIndex = this.position;
    const match = wordPattern.exec(this.text);
    if (match === null) return "";
    this.position += match[0].length;
    return match[0];
  }

  private take(literal: string): boolean {
    if (!this.text.startsWith(literal, this.position)) return false;
    this.position += literal.length;
    return true;
  }

  private expect(literal: string): void {
    this.skipSpace();
    if (!this.take(literal)) throw this.error(`expected '${literal}'`);
  }

  private skipSpace(): void {
    while (this.position < this.text.length && /\s/.test(this.text.charAt(this.position))) this.position++;
  }

  private atEnd(): boolean {
    return this.position >= this.text.length;
  }

  private error(expected: string): RegistryError {
    return RegistryError.invalid(
      this.field,
      `must be a label selector such as "env=prod,tier in (web,api),!canary": ${expected} at character ${this.position + 1}`,
      this.text,
    );
  }
}
