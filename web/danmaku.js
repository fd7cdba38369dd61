// The danmaku overlay: bullet comments over the video, as DOM nodes.
//
// Scrolling bullets cross right to left at one speed (the overlay's width plus a margin in
// SCROLL_MS), so a bullet never catches the one ahead of it: a lane takes the next bullet
// once the previous one's tail is GAP_PX clear of the right edge, measured on screen when
// the next one comes (a bullet's width can grow after it is placed, when a font for its
// characters arrives). A bullet goes to the
// top-most lane free now; when every lane is busy it waits (at most QUEUE_MAX bullets wait,
// oldest dropped first, counted in `dropped`). `top` and `bottom` bullets stand centred in
// their own lanes for FIXED_MS.

const SCROLL_MS = 8000;
const FIXED_MS = 4000;
const GAP_PX = 24;
const QUEUE_MAX = 200;
/** Scrolling bullets use the upper share of the picture, so faces and subtitles stay clear. */
const SCROLL_AREA = 0.75;

export class Overlay {
  constructor(root) {
    this.root = root;
    this.lineHeight = 32;
    /** Per scroll lane: its newest bullet and that bullet's speed (px/ms). */
    this.scrollLast = [];
    this.speed = 0;
    /** Per fixed lane: when it is free again. */
    this.topFree = [];
    this.bottomFree = [];
    this.queue = [];
    this.dropped = 0;
    this.shown = 0;
    this.enabled = true;
    this.timer = null;
  }

  /** Shows `text` in `color` (0xRRGGBB) and `mode` ('scroll', 'top', 'bottom'). */
  add(bullet) {
    if (!this.enabled) return;
    this.queue.push(bullet);
    if (this.queue.length > QUEUE_MAX) {
      this.queue.shift();
      this.dropped += 1;
    }
    this.pump();
  }

  clear() {
    this.queue = [];
    this.root.replaceChildren();
    this.scrollLast = [];
    this.speed = 0;
    this.topFree = [];
    this.bottomFree = [];
  }

  lanes(share) {
    return Math.max(1, Math.floor((this.root.clientHeight * share) / this.lineHeight));
  }

  pump() {
    clearTimeout(this.timer);
    this.timer = null;
    const now = performance.now();
    let wait = Infinity;
    while (this.queue.length) {
      const bullet = this.queue[0];
      const count = bullet.mode === 'scroll' ? this.lanes(SCROLL_AREA) : this.lanes(0.5);
      let lane = -1;
      for (let i = 0; i < count; i += 1) {
        const freeIn = this.freeIn(bullet.mode, i, now);
        if (freeIn <= 0) { lane = i; break; }
        wait = Math.min(wait, freeIn);
      }
      if (lane < 0) break;
      this.queue.shift();
      this.show(bullet, lane, now);
      wait = Infinity;
    }
    if (this.queue.length && Number.isFinite(wait)) {
      this.timer = setTimeout(() => this.pump(), Math.max(16, wait));
    }
  }

  /** Milliseconds until lane `lane` of `mode` may take a bullet (0 or less: now). */
  freeIn(mode, lane, now) {
    if (mode !== 'scroll') {
      const free = mode === 'top' ? this.topFree : this.bottomFree;
      return (free[lane] || 0) - now;
    }
    const last = this.scrollLast[lane];
    if (!last || !last.node.isConnected) return 0;
    const box = this.root.getBoundingClientRect();
    const right = last.node.getBoundingClientRect().right - box.left;
    const limit = box.width - GAP_PX;
    return right <= limit ? 0 : (right - limit) / last.speed;
  }

  show(bullet, lane, now) {
    const node = document.createElement('div');
    node.className = `bullet ${bullet.mode}${bullet.mine ? ' mine' : ''}`;
    node.textContent = bullet.text;
    node.style.color = `#${(bullet.color & 0xffffff).toString(16).padStart(6, '0')}`;
    node.dataset.seq = String(bullet.seq);
    node.dataset.lane = String(lane);
    node.dataset.mode = bullet.mode;
    if (bullet.mode === 'scroll') {
      // Placed off the right edge before it is shown, so no frame draws it at the left
      // before its animation starts.
      node.style.transform = `translateX(${this.root.clientWidth}px)`;
    }
    this.root.append(node);
    this.shown += 1;
    if (bullet.mode === 'scroll') {
      const width = this.root.clientWidth;
      const own = node.offsetWidth;
      // px per ms, the same for every bullet (set by the first one; `clear` resets it).
      this.speed ||= (width + 200) / SCROLL_MS;
      const speed = this.speed;
      const duration = (width + own) / speed;
      node.style.top = `${lane * this.lineHeight}px`;
      this.scrollLast[lane] = { node, speed };
      // `fill: forwards` keeps it off the left edge until `onfinish` removes it; without it
      // the finished bullet falls back to its inline transform, at the right edge, for the
      // frames before the event runs.
      const run = node.animate(
        [{ transform: `translateX(${width}px)` }, { transform: `translateX(${-own}px)` }],
        { duration, easing: 'linear', fill: 'forwards' },
      );
      run.onfinish = () => node.remove();
    } else {
      node.classList.add('fixed');
      const free = bullet.mode === 'top' ? this.topFree : this.bottomFree;
      free[lane] = now + FIXED_MS;
      if (bullet.mode === 'top') node.style.top = `${lane * this.lineHeight}px`;
      else node.style.top = `${this.root.clientHeight - (lane + 1) * this.lineHeight}px`;
      setTimeout(() => node.remove(), FIXED_MS);
    }
  }
}
