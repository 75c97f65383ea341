/**
 * The playground page: picks a backend once (WebGPU through `navigator.gpu`, or the CPU backend
 * with one visible notice saying why), then shows three tabs, each setting itself up the first
 * time it is opened:
 *
 * - images (`images.ts`): a VAE or GAN learns MNIST digits, with loss curves and a sample grid;
 * - text (`text.ts`): a character model learns names and writes 10 new ones as it trains;
 * - audio (`audio.ts`): a spectrogram VAE learns spoken digits; buttons 0–9 generate, play and
 *   draw a clip.
 *
 * URL parameters (also what the browser test uses): `tab` (images, text, audio); for the tab it
 * opens: `model`, `batch`, `lr`, `steps` (stop after this many), `sampleEvery` (default 25),
 * `autostart=1`, `temperature` (text), `griffinLim` (audio: iterations per clip); for every tab: `seed`, `backend=cpu` (skip WebGPU),
 * `matmul` (subgroup, register or shared: skip the timed trial that picks the matmul kernel).
 * The page's progress is mirrored in `window.fluxionPlayground`: the shared fields and the image
 * tab's at the top level, the other tabs' in `.text` and `.audio`.
 */
import { type AudioState, audioState, setupAudioTab } from './audio.js';
import { type ImagesState, imagesState, setupImagesTab } from './images.js';
import { byId, chooseBackend, type SharedState, showError, TABS, type TabName } from './page.js';
import { setupTextTab, type TextState, textState } from './text.js';

/** What the page publishes as `window.fluxionPlayground`. */
export interface PlaygroundState extends SharedState, ImagesState {
  text: TextState;
  audio: AudioState;
  /** Milliseconds spent choosing the backend, loading the digits, and on the first image step. */
  timings: ImagesState['timings'] & { backend: number };
}

declare global {
  interface Window {
    fluxionPlayground: PlaygroundState;
  }
}

const state: PlaygroundState = Object.assign(imagesState, {
  text: textState,
  audio: audioState,
  timings: { ...imagesState.timings, backend: 0 },
});
imagesState.timings = state.timings;
window.fluxionPlayground = state;

const setups: Record<TabName, () => Promise<void>> = {
  images: setupImagesTab,
  text: setupTextTab,
  audio: setupAudioTab,
};
const started = new Map<TabName, Promise<void>>();
let backendChosen: Promise<void> | null = null;

/** Shows `tab`, and sets it up the first time (once the backend is chosen). */
function showTab(tab: TabName): void {
  state.tab = tab;
  for (const name of TABS) {
    const selected = name === tab;
    byId<HTMLButtonElement>(`tab-button-${name}`).setAttribute('aria-selected', String(selected));
    byId<HTMLElement>(`tab-${name}`).hidden = !selected;
  }
  const url = new URL(location.href);
  if (url.searchParams.get('tab') !== tab) {
    url.searchParams.set('tab', tab);
    history.replaceState(null, '', url);
  }
  if (!started.has(tab) && backendChosen) {
    started.set(
      tab,
      backendChosen
        .then(setups[tab])
        .catch((e) =>
          showError(
            `The ${tab} tab`,
            e,
            tab === 'images' ? state : tab === 'text' ? state.text : state.audio,
          ),
        ),
    );
  }
}

async function main(): Promise<void> {
  for (const tab of TABS) byId(`tab-button-${tab}`).addEventListener('click', () => showTab(tab));
  for (const tab of TABS)
    byId(`${tab === 'images' ? '' : `${tab}-`}status`).textContent = 'choosing a backend…';
  const t = performance.now();
  backendChosen = chooseBackend();
  await backendChosen;
  state.timings.backend = Math.round(performance.now() - t);
  showTab(state.tab);
}

main().catch((e) => showError('The page', e));
