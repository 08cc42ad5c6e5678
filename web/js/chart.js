// A compact canvas chart renderer: time-series lines and stacked bars. No library, no
// build step. Each chart redraws on data and on resize; the number of points it holds is
// exposed as data-points on the canvas (the browser tests read it).

const AXIS = '#8b9bb0';
const GRID = 'rgba(139,155,176,0.15)';

function setup(canvas) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || 300;
  const hgt = canvas.clientHeight || 160;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(hgt * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(hgt * dpr);
  }
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, hgt);
  ctx.font = '11px system-ui, sans-serif';
  return { ctx, w, hgt };
}

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function hhmm(t) {
  const d = new Date(t);
  return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
}

// Lines over a sliding time window. series: [{key, label, color}]; points: {t, [key]: v}.
export class LineChart {
  constructor(canvas, { series, windowSec = 900, yMax = null, format = (v) => v.toFixed(0), maxPoints = 5000 }) {
    this.canvas = canvas;
    this.series = series;
    this.windowSec = windowSec;
    this.fixedMax = yMax;
    this.format = format;
    this.maxPoints = maxPoints;
    this.points = [];
    this.resize = new ResizeObserver(() => this.draw());
    this.resize.observe(canvas);
    canvas.setAttribute('role', 'img');
  }

  set(points) {
    this.points = points.map((p) => ({ ...p, t: new Date(p.t).getTime() })).sort((a, b) => a.t - b.t);
    this.trim();
    this.draw();
  }

  push(p) {
    const t = new Date(p.t).getTime();
    const last = this.points[this.points.length - 1];
    if (last && t < last.t) {
      this.points.push({ ...p, t });
      this.points.sort((a, b) => a.t - b.t);
    } else if (last && t === last.t) {
      this.points[this.points.length - 1] = { ...p, t };
    } else {
      this.points.push({ ...p, t });
    }
    this.trim();
    this.draw();
  }

  trim() {
    const from = Date.now() - this.windowSec * 1000;
    while (this.points.length && (this.points[0].t < from || this.points.length > this.maxPoints)) this.points.shift();
    this.canvas.dataset.points = String(this.points.length);
  }

  destroy() { this.resize.disconnect(); }

  draw() {
    const { ctx, w, hgt } = setup(this.canvas);
    const pad = { l: 52, r: 8, t: 8, b: 18 };
    const now = Date.now();
    const from = now - this.windowSec * 1000;
    let max = this.fixedMax;
    if (max === null) {
      let m = 0;
      for (const p of this.points) for (const s of this.series) m = Math.max(m, Number(p[s.key]) || 0);
      max = niceMax(m);
    }
    const x = (t) => pad.l + ((t - from) / (now - from)) * (w - pad.l - pad.r);
    const y = (v) => hgt - pad.b - (Math.min(v, max) / max) * (hgt - pad.t - pad.b);
    ctx.strokeStyle = GRID;
    ctx.fillStyle = AXIS;
    ctx.lineWidth = 1;
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    for (let i = 0; i <= 4; i++) {
      const v = (max * i) / 4;
      ctx.beginPath();
      ctx.moveTo(pad.l, y(v));
      ctx.lineTo(w - pad.r, y(v));
      ctx.stroke();
      ctx.fillText(this.format(v), pad.l - 6, y(v));
    }
    ctx.textAlign = 'center';
    ctx.textBaseline = 'alphabetic';
    for (let i = 0; i <= 3; i++) {
      const t = from + ((now - from) * i) / 3;
      ctx.fillText(hhmm(t), Math.min(Math.max(x(t), pad.l + 14), w - 20), hgt - 4);
    }
    for (const s of this.series) {
      ctx.strokeStyle = s.color;
      ctx.lineWidth = 1.6;
      ctx.beginPath();
      let started = false;
      let prev = null;
      for (const p of this.points) {
        const v = Number(p[s.key]);
        if (!Number.isFinite(v)) continue;
        // A gap of more than a minute breaks the line.
        if (!started || (prev && p.t - prev > 60000)) ctx.moveTo(x(p.t), y(v));
        else ctx.lineTo(x(p.t), y(v));
        started = true;
        prev = p.t;
      }
      ctx.stroke();
    }
    const last = this.points[this.points.length - 1];
    this.canvas.setAttribute('aria-label', `${this.series.map((s) => `${s.label} ${last ? this.format(Number(last[s.key]) || 0) : 'no data'}`).join(', ')}`);
  }
}

// Stacked bars, one per bucket. buckets: [{label, values: {key: n}}]; series: [{key, label, color}].
export class BarChart {
  constructor(canvas, { series }) {
    this.canvas = canvas;
    this.series = series;
    this.buckets = [];
    this.resize = new ResizeObserver(() => this.draw());
    this.resize.observe(canvas);
    canvas.setAttribute('role', 'img');
  }

  set(buckets) {
    this.buckets = buckets;
    this.canvas.dataset.points = String(buckets.length);
    this.draw();
  }

  destroy() { this.resize.disconnect(); }

  draw() {
    const { ctx, w, hgt } = setup(this.canvas);
    const pad = { l: 40, r: 8, t: 8, b: 18 };
    let m = 0;
    for (const b of this.buckets) m = Math.max(m, this.series.reduce((a, s) => a + (b.values[s.key] || 0), 0));
    // Counts: keep the four grid steps whole numbers.
    const max = m <= 40 ? Math.max(4, Math.ceil(m / 4) * 4) : niceMax(m);
    const n = Math.max(this.buckets.length, 1);
    const bw = (w - pad.l - pad.r) / n;
    const y = (v) => hgt - pad.b - (v / max) * (hgt - pad.t - pad.b);
    ctx.strokeStyle = GRID;
    ctx.fillStyle = AXIS;
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    for (let i = 0; i <= 4; i++) {
      const v = (max * i) / 4;
      ctx.beginPath();
      ctx.moveTo(pad.l, y(v));
      ctx.lineTo(w - pad.r, y(v));
      ctx.stroke();
      ctx.fillText(Number.isInteger(v) ? String(v) : v.toFixed(1), pad.l - 6, y(v));
    }
    ctx.textAlign = 'center';
    ctx.textBaseline = 'alphabetic';
    this.buckets.forEach((b, i) => {
      let acc = 0;
      for (const s of this.series) {
        const v = b.values[s.key] || 0;
        if (!v) continue;
        ctx.fillStyle = s.color;
        ctx.fillRect(pad.l + i * bw + 1, y(acc + v), Math.max(bw - 2, 1), y(acc) - y(acc + v));
        acc += v;
      }
      if (i % Math.ceil(n / 6) === 0) {
        ctx.fillStyle = AXIS;
        ctx.fillText(b.label, pad.l + i * bw + bw / 2, hgt - 4);
      }
    });
    const total = this.buckets.reduce((a, b) => a + this.series.reduce((x, s) => x + (b.values[s.key] || 0), 0), 0);
    this.canvas.setAttribute('aria-label', `${total} in ${this.buckets.length} buckets`);
  }
}

export function legend(series) {
  const el = document.createElement('div');
  el.className = 'legend';
  for (const s of series) {
    const i = document.createElement('span');
    const sw = document.createElement('i');
    sw.style.background = s.color;
    i.append(sw, document.createTextNode(s.label));
    el.appendChild(i);
  }
  return el;
}
