// Terminal output helpers for the CLI: sizes, tables, a progress line.

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`;
}

export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => (row[c] ?? '').length)));
  return rows
    .map((row) =>
      row
        .map((cell, c) => cell.padEnd(widths[c]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** Progress lines on stderr, each stamped with the seconds since start. */
export function progressPrinter(stream: NodeJS.WriteStream = process.stderr): (stage: string, detail: string) => void {
  const started = performance.now();
  return (stage, detail) => stream.write(`[${((performance.now() - started) / 1000).toFixed(1).padStart(5)}s] ${stage.padEnd(9)} ${detail}\n`);
}
