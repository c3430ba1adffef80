(ev, el) => {
  // Paint first, then tell Gradio (assets/forward_fast.js and toy2d_fast.js call this from
  // their capture-phase `input` listener on document, after drawing the slider's new value).
  // Gradio's own reaction to a slider's input costs the page ~30 ms of script before the next
  // frame (measured in a Chromium trace of tab 2: Svelte's updates, the event's dispatch), so
  // the browser's drawing waited for it. Here the event stops before it reaches Gradio; one
  // `input` event is dispatched again once the frame that shows the drawing is on screen (two
  // animation frames later, with the slider's latest value then: a drag's many events become
  // one), and Gradio's reaction and its round trip to the server follow as before.
  ev.stopImmediatePropagation();
  if (el.__dlReplayPending) return;
  el.__dlReplayPending = true;
  requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(() => {
    el.__dlReplayPending = false;
    el.__dlReplay = true;  // the listeners let this one through
    try {
      el.dispatchEvent(new Event('input', {bubbles: true}));
    } finally {
      el.__dlReplay = false;
    }
  }, 0)));
}
