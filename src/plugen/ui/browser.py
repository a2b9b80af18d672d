"""In-page timing of a slider move, shared by the browser tests and ``benchmarks/ui.py``.

``MOVE_JS`` (for Playwright's ``page.evaluate(MOVE_JS, [slot, value])``) moves the range input of
slider ``slot`` to ``value`` as a user would (an input event) and resolves with the milliseconds
until the new picture is decoded and shown.
"""

MOVE_JS = """
async ([slot, value]) => {
  const img0 = document.querySelector('#picture img').src;
  const input = document.querySelector(`#slider-${slot} input[type=range]`);
  const t0 = performance.now();
  Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set.call(input, String(value));
  input.dispatchEvent(new Event('input', {bubbles: true}));
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the picture did not change within 10 s')), 10000);
    const check = async () => {
      const img = document.querySelector('#picture img');
      if (img && img.src !== img0) {
        observer.disconnect();
        clearTimeout(timer);
        await img.decode();
        resolve(performance.now() - t0);
      }
    };
    const observer = new MutationObserver(check);
    observer.observe(document.querySelector('#picture'), {subtree: true, childList: true, attributes: true});
    check();
  });
}
"""
