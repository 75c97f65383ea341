/** Vite's `?raw` imports: the file's text, bundled into the script. */
declare module '*?raw' {
  const text: string;
  export default text;
}
