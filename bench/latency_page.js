// Plays the hub (WHEP) or Janus (streaming plugin) and, for every frame shown, reads the
// capture time that bench/camera.py --clock drew into the picture and compares it with
// Date.now() (same host clock). Results accumulate in window.samples (ms).
window.samples = [];
window.failures = 0;
const BLOCK = 32, BITS = 32, WRAP = 4294967296;
const video = document.createElement("video");
video.muted = true; video.autoplay = true; video.playsInline = true;
document.body.appendChild(video);
const canvas = document.createElement("canvas");
canvas.width = BLOCK * BITS; canvas.height = 2 * BLOCK;
const ctx = canvas.getContext("2d", { willReadFrequently: true });

function onFrame(_now, _meta) {
  const shown = Date.now();
  ctx.drawImage(video, 0, 0, canvas.width, canvas.height, 0, 0, canvas.width, canvas.height);
  const px = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  let stamp = 0, ok = true;
  for (let i = 0; i < BITS; i++) {
    const x = i * BLOCK + BLOCK / 2;
    const bit = px[((BLOCK / 2) * canvas.width + x) * 4] > 128;
    const inv = px[((BLOCK + BLOCK / 2) * canvas.width + x) * 4] > 128;
    if (bit === inv) ok = false;
    stamp = stamp * 2 + (bit ? 1 : 0);
  }
  if (ok) window.samples.push(((shown % WRAP) - stamp + WRAP) % WRAP);
  else window.failures++;
  video.requestVideoFrameCallback(onFrame);
}

function show(track) {
  video.srcObject = new MediaStream([track]);
  video.play();
  video.requestVideoFrameCallback(onFrame);
}

function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((ok) => pc.addEventListener("icegatheringstatechange", () => {
    if (pc.iceGatheringState === "complete") ok();
  }));
}

window.playWhep = async (url, token) => {
  const pc = new RTCPeerConnection();
  pc.addTransceiver("video", { direction: "recvonly" });
  pc.ontrack = (e) => show(e.track);
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc);
  const r = await fetch(url, { method: "POST", body: pc.localDescription.sdp,
    headers: { "Content-Type": "application/sdp", "Authorization": "Bearer " + token } });
  if (r.status !== 201) throw new Error("WHEP " + r.status + " " + await r.text());
  await pc.setRemoteDescription({ type: "answer", sdp: await r.text() });
  window.pc = pc;
};

async function janus(path, body) {
  body.transaction = Math.random().toString(36).slice(2);
  const r = await fetch(path, { method: "POST", body: JSON.stringify(body) });
  const reply = await r.json();
  if (reply.janus === "error") throw new Error(JSON.stringify(reply.error));
  return reply;
}

window.playJanus = async (api, id) => {
  const session = (await janus(api, { janus: "create" })).data.id;
  const handle = (await janus(`${api}/${session}`,
    { janus: "attach", plugin: "janus.plugin.streaming" })).data.id;
  await janus(`${api}/${session}/${handle}`, { janus: "message", body: { request: "watch", id } });
  let offer = null;
  while (!offer) {
    const events = await (await fetch(`${api}/${session}?maxev=1`)).json();
    for (const ev of [].concat(events)) if (ev.jsep) offer = ev.jsep;
  }
  const pc = new RTCPeerConnection();
  pc.ontrack = (e) => show(e.track);
  await pc.setRemoteDescription(offer);
  await pc.setLocalDescription(await pc.createAnswer());
  await gathered(pc);
  await janus(`${api}/${session}/${handle}`, { janus: "message", body: { request: "start" },
    jsep: { type: "answer", sdp: pc.localDescription.sdp } });
  await janus(`${api}/${session}/${handle}`, { janus: "trickle", candidate: { completed: true } });
  window.pc = pc;
};
