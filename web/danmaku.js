// The danmaku overlay: bullet comments over the video, as DOM nodes.
//
// Scrolling bullets cross right to left at one speed (the overlay's width plus a margin in
// SCROLL_MS), so a bullet never catches the one ahead of it: a lane takes the next bullet
// once the previous one's tail has moved GAP_PX clear of the right edge. A bullet goes to the
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
    /** Per scroll lane: when (ms, performance clock) it may take the next bullet. */
    this.scrollFree = [];
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
    this.scrollFree = [];
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
      const free = this.freeLanes(bullet.mode);
      const count = bullet.mode === 'scroll' ? this.lanes(SCROLL_AREA) : this.lanes(0.5);
      let lane = -1;
      for (let i = 0; i < count; i += 1) {
        if ((free[i] || 0) <= now) { lane = i; break; }
        wait = Math.min(wait, free[i] - now);
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

  freeLanes(mode) {
    if (mode === 'top') return this.topFree;
    if (mode === 'bottom') return this.bottomFree;
    return this.scrollFree;
  }

  show(bullet, lane, now) {
    const node = document.createElement('div');
    node.className = `bullet ${bullet.mode}${bullet.mine ? ' mine' : ''}`;
    node.textContent = bullet.text;
    node.style.color = `#${(bullet.color & 0xffffff).toString(16).padStart(6, '0')}`;
    node.dataset.seq = String(bullet.seq);
    node.dataset.lane = String(lane);
    node.dataset.mode = bullet.mode;
    this.root.append(node);
    this.shown += 1;
    if (bullet.mode === 'scroll') {
      const width = this.root.clientWidth;
      const own = node.offsetWidth;
      const speed = (width + 200) / SCROLL_MS; // px per ms, the same for every bullet
      const duration = (width + own) / speed;
      node.style.top = `${lane * this.lineHeight}px`;
      this.scrollFree[lane] = now + (own + GAP_PX) / speed;
      const run = node.animate(
        [{ transform: `translateX(${width}px)` }, { transform: `translateX(${-own}px)` }],
        { duration, easing: 'linear' },
      );
      run.onfinish = () => node.remove();
    } else {
      node.classList.add('fixed');
      const free = this.freeLanes(bullet.mode);
      free[lane] = now + FIXED_MS;
      if (bullet.mode === 'top') node.style.top = `${lane * this.lineHeight}px`;
      else node.style.top = `${this.root.clientHeight - (lane + 1) * this.lineHeight}px`;
      setTimeout(() => node.remove(), FIXED_MS);
    }
  }
}
