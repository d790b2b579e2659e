/** Rendering of the benchmark results: aligned console tables, Markdown tables, an SVG bar chart. */

export interface Table {
  title: string;
  head: string[];
  rows: string[][];
  /** Column indexes aligned left (default: first column only). */
  left?: number[];
  note?: string;
}

export function fmt(v: number | undefined, digits = 0): string {
  if (v === undefined || !Number.isFinite(v)) return '–';
  return v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** Value with a precision that suits its size (latencies, CPU ms). */
export function fmtMs(v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return '–';
  return v >= 100 ? fmt(v, 0) : v >= 10 ? fmt(v, 1) : fmt(v, 2);
}

export function ratio(a: number | undefined, b: number | undefined): string {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) return '–';
  const r = a / b;
  return `${r >= 10 ? r.toFixed(1) : r.toFixed(2)}×`;
}

export function pct(v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return '–';
  return `${Math.round(v * 100)}%`;
}

export function renderText(t: Table): string {
  const left = new Set(t.left ?? [0]);
  const all = [t.head, ...t.rows];
  const widths = t.head.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string =>
    r.map((c, i) => (left.has(i) ? (c ?? '').padEnd(widths[i]) : (c ?? '').padStart(widths[i]))).join('  ');
  const out = [`\n${t.title}`, line(t.head), widths.map((w) => '-'.repeat(w)).join('  '), ...t.rows.map(line)];
  if (t.note) out.push(t.note);
  return out.join('\n');
}

const escapeMd = (s: string): string => s.replace(/\|/g, '\\|');

export function renderMarkdown(t: Table, level = '###'): string {
  const left = new Set(t.left ?? [0]);
  const out = [
    `${level} ${t.title}`,
    '',
    `| ${t.head.map(escapeMd).join(' | ')} |`,
    `|${t.head.map((_, i) => (left.has(i) ? ' --- ' : ' ---: ')).join('|')}|`,
  ];
  for (const r of t.rows) out.push(`| ${r.map(escapeMd).join(' | ')} |`);
  if (t.note) out.push('', t.note);
  return out.join('\n');
}

export interface ChartSeries {
  name: string;
  color: string;
}

export interface ChartGroup {
  label: string;
  values: Array<number | undefined>;
}

const xmlEscape = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export interface ChartPanel {
  title: string;
  subtitle: string;
  series: ChartSeries[];
  groups: ChartGroup[];
  unit: string;
  /** Per group, an optional reference value drawn as a dashed line with its label (e.g. a target). */
  markers?: Array<{ value: number; label: string } | undefined>;
  /** Value labels (default: fmt, no decimals). */
  format?: (v: number) => string;
}

const LABEL_W = 290;
const PLOT_W = 540;
const CHART_W = LABEL_W + PLOT_W + 110;

/** One panel: its SVG elements (origin at its top left) and its height. */
function barChartPanel(p: ChartPanel): { parts: string[]; height: number } {
  const barH = 16;
  const gap = 4;
  const groupGap = 16;
  const top = 84;
  const show = p.format ?? ((v: number) => fmt(v));
  const groupH = p.series.length * (barH + gap) - gap;
  const height = top + p.groups.length * (groupH + groupGap) + 50;
  const values = p.groups.flatMap((g) => g.values.filter((v): v is number => v !== undefined && Number.isFinite(v)));
  const max = Math.max(1e-9, ...values, ...(p.markers ?? []).map((m) => m?.value ?? 0));
  const step = niceStep(max / 5);
  const axisMax = Math.ceil(max / step) * step;
  const x = (v: number): number => LABEL_W + (v / axisMax) * PLOT_W;
  const parts: string[] = [
    `<text x="16" y="24" font-size="16" font-weight="bold">${xmlEscape(p.title)}</text>`,
    `<text x="16" y="44" fill="#555">${xmlEscape(p.subtitle)}</text>`,
  ];
  for (let v = 0; v <= axisMax + step / 1e6; v += step) {
    parts.push(`<line x1="${x(v)}" y1="${top - 8}" x2="${x(v)}" y2="${height - 40}" stroke="#e3e3e3"/>`);
    parts.push(
      `<text x="${x(v)}" y="${height - 24}" text-anchor="middle" fill="#555">${xmlEscape(step < 1 ? v.toFixed(1) : fmt(v))}</text>`,
    );
  }
  parts.push(
    `<text x="${LABEL_W + PLOT_W / 2}" y="${height - 8}" text-anchor="middle" fill="#333">${xmlEscape(p.unit)}</text>`,
  );
  p.groups.forEach((g, gi) => {
    const y0 = top + gi * (groupH + groupGap);
    parts.push(`<text x="${LABEL_W - 10}" y="${y0 + groupH / 2 + 4}" text-anchor="end">${xmlEscape(g.label)}</text>`);
    g.values.forEach((v, si) => {
      const y = y0 + si * (barH + gap);
      if (v === undefined || !Number.isFinite(v)) {
        parts.push(`<text x="${LABEL_W + 4}" y="${y + barH - 4}" fill="#999">not measured</text>`);
        return;
      }
      parts.push(
        `<rect x="${LABEL_W}" y="${y}" width="${Math.max(1, x(v) - LABEL_W)}" height="${barH}" fill="${p.series[si].color}"/>`,
      );
      parts.push(`<text x="${x(v) + 4}" y="${y + barH - 4}" fill="#222">${xmlEscape(show(v))}</text>`);
    });
    const m = p.markers?.[gi];
    if (m) {
      parts.push(
        `<line x1="${x(m.value)}" y1="${y0 - 4}" x2="${x(m.value)}" y2="${y0 + groupH + 4}" stroke="#222" stroke-width="2" stroke-dasharray="4 3"/>`,
      );
      parts.push(
        `<text x="${x(m.value) + 4}" y="${y0 + groupH + 12}" fill="#222" font-size="10">${xmlEscape(m.label)}</text>`,
      );
    }
  });
  // Legend.
  let lx = LABEL_W;
  for (const s of p.series) {
    parts.push(`<rect x="${lx}" y="${top - 24}" width="12" height="12" fill="${s.color}"/>`);
    parts.push(`<text x="${lx + 16}" y="${top - 14}">${xmlEscape(s.name)}</text>`);
    lx += 24 + s.name.length * 7;
  }
  return { parts, height };
}

/** Several horizontal grouped bar charts stacked vertically in one standalone SVG. */
export function stackedBarChartsSvg(panels: ChartPanel[]): string {
  const out: string[] = [];
  let y = 0;
  for (const [i, p] of panels.entries()) {
    const { parts, height } = barChartPanel(p);
    if (i > 0) out.push(`<line x1="16" y1="${y}" x2="${CHART_W - 16}" y2="${y}" stroke="#bbb"/>`);
    out.push(`<g transform="translate(0,${y})">`, ...parts, '</g>');
    y += height + 8;
  }
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${CHART_W}" height="${y}" viewBox="0 0 ${CHART_W} ${y}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    ...out,
    '</svg>',
  ].join('\n');
}

/** A horizontal grouped bar chart (one group per target, one bar per series) as standalone SVG. */
export function barChartSvg(
  title: string,
  subtitle: string,
  series: ChartSeries[],
  groups: ChartGroup[],
  unit: string,
): string {
  return stackedBarChartsSvg([{ title, subtitle, series, groups, unit }]);
}

function niceStep(raw: number): number {
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}
