// @ts-check
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/", "gen/", "node_modules/", "examples/python/"] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      "@typescript-eslint/restrict-template-expressions": ["error", { allowNumber: true }],
      "@typescript-eslint/no-confusing-void-expression": "off",
    },
  },
  {
    files: ["eslint.config.js", "rolldown.config.js", "examples/**/*.mjs", "bench/**/*.mjs"],
    ...tseslint.configs.disableTypeChecked,
  },
  {
    // Type-checked (`// @ts-check`, tsconfig's allowJs), so TypeScript, not this rule, knows Node's globals.
    files: ["scripts/**/*.mjs", "src/**/*.mjs"],
    rules: { "no-undef": "off" },
  },
  {
    files: ["examples/**/*.mjs", "bench/**/*.mjs"],
    languageOptions: { globals: { process: "readonly", console: "readonly", Buffer: "readonly" } },
  },
);
