// Small media helpers for the terminal: a ring tone (WebAudio, no sound file needed) and a
// JPEG of a <video>'s current frame (the roll-call snapshot).

export class Ringer {
  constructor() {
    this.ctx = null;
    this.timer = null;
  }

  start() {
    this.stop();
    try {
      this.ctx = this.ctx || new AudioContext();
      this.ctx.resume().catch(() => {});
    } catch {
      return; // no audio: the screen still shows the call
    }
    const beep = () => {
      const ctx = this.ctx;
      if (!ctx || ctx.state !== "running") return;
      for (const at of [0, 0.45]) {
        const osc = ctx.createOscillator();
        const gain = ctx.createGain();
        osc.frequency.value = 880;
        gain.gain.setValueAtTime(0.15, ctx.currentTime + at);
        gain.gain.setValueAtTime(0, ctx.currentTime + at + 0.3);
        osc.connect(gain).connect(ctx.destination);
        osc.start(ctx.currentTime + at);
        osc.stop(ctx.currentTime + at + 0.35);
      }
    };
    beep();
    this.timer = setInterval(beep, 2000);
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
  }
}

// A JPEG Blob of the video's current frame, waiting up to 3 s for the first frame; null if none.
export async function snapshotJpeg(video, { quality = 0.8, waitMs = 3000 } = {}) {
  const until = performance.now() + waitMs;
  while (!video.videoWidth && performance.now() < until) {
    await new Promise((r) => setTimeout(r, 100));
  }
  if (!video.videoWidth) return null;
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  canvas.getContext("2d").drawImage(video, 0, 0);
  return new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", quality));
}
