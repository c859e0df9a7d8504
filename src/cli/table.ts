/** A cell: its text, and how to colour it once padded (colour codes have no width). */
export type Cell = string | { readonly text: string; readonly paint: (padded: string) => string };

/**
 * Aligned columns with upper-case headers and no borders, as kubectl prints
 * them: easy to read, and easy to cut with awk.
 */
export function renderTable(headers: readonly string[], rows: readonly (readonly Cell[])[]): string {
  const widths = headers.map((header, column) => Math.max(header.length, ...rows.map((row) => textOf(row[column]).length)));
  const line = (cells: readonly Cell[]) =>
    cells
      .map((cell, column) => {
        const last = column === cells.length - 1;
        const padded = last ? textOf(cell) : textOf(cell).padEnd(widths[column] ?? 0);
        return typeof cell === "string" ? padded : cell.paint(padded);
      })
      .join("   ")
      .trimEnd();
  return [line(headers), ...rows.map(line)].join("\n") + "\n";
}

function textOf(cell: Cell | undefined): string {
  if (cell === undefined) return "";
  return typeof cell === "string" ? cell : cell.text;
}
