// Module declarations for wrangler's CompiledWasm imports (a .wasm import is a WebAssembly.Module).
declare module '*.wasm' {
  const module: WebAssembly.Module;
  export default module;
}
