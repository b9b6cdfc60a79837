// WebGPU for training, through Dawn (the npm `webgpu` package), loaded only when tried: finds an
// adapter, tells a GPU from a software rasterizer (Mesa's lavapipe/llvmpipe, SwiftShader), and
// registers TF.js's 'webgpu' backend on exactly that adapter. Without an adapter it says why
// (no Vulkan loader, no Vulkan driver, a Mesa too old for Dawn) instead of failing later.
import { existsSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';

export interface GpuAdapter {
  /** Dawn's description, e.g. 'NVIDIA GeForce RTX 4090' or 'llvmpipe (LLVM 19.1.7, 256 bits)'. */
  description: string;
  vendor: string;
  architecture: string;
  /** A CPU rasterizer pretending to be a GPU (Dawn's fallback adapter). */
  software: boolean;
}

/** An adapter, with TF.js's 'webgpu' backend registered on it; or why there is none. */
export type WebGpuProbe = { adapter: GpuAdapter } | { adapter: null; reason: string };
export type WebGpuLoader = () => Promise<WebGpuProbe>;

interface AdapterInfoLike {
  vendor?: string;
  architecture?: string;
  device?: string;
  description?: string;
  isFallbackAdapter?: boolean;
}

/** Dawn reports lavapipe as isFallbackAdapter / architecture 'software', even for 'high-performance'. */
export function isSoftwareAdapter(info: AdapterInfoLike): boolean {
  return info.isFallbackAdapter === true || info.architecture === 'software' || /llvmpipe|lavapipe|swiftshader/i.test(info.description ?? '');
}

export const VULKAN_ICD_DIRS = ['/usr/share/vulkan/icd.d', '/etc/vulkan/icd.d', '/usr/local/share/vulkan/icd.d'];
const VULKAN_LOADER_DIRS = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib', '/lib/x86_64-linux-gnu', '/usr/local/lib'];

/** The Vulkan drivers (ICD files) the Vulkan loader will read: the env's list, else the standard folders. */
export function vulkanDrivers(env: NodeJS.ProcessEnv = process.env): string[] {
  const listed = env.VK_DRIVER_FILES ?? env.VK_ICD_FILENAMES;
  if (listed) return listed.split(':').filter(Boolean);
  return VULKAN_ICD_DIRS.flatMap((dir) =>
    existsSync(dir)
      ? readdirSync(dir)
          .filter((f) => f.endsWith('.json'))
          .map((f) => join(dir, f))
      : [],
  );
}

const SETUP_HINT = "'npm run setup:gpu' installs Mesa's software lavapipe (Debian/Ubuntu)";

/** On Linux, what is missing for Dawn's Vulkan backend (no loader, no driver file); null when both are there. */
function missingVulkan(): string | null {
  if (process.platform !== 'linux') return null;
  if (!VULKAN_LOADER_DIRS.some((dir) => existsSync(join(dir, 'libvulkan.so.1')))) {
    return `the Vulkan loader libvulkan.so.1 is not installed (Debian/Ubuntu package libvulkan1), so Dawn sees no GPU: install it with your GPU's Vulkan driver, or ${SETUP_HINT}`;
  }
  const drivers = vulkanDrivers();
  const absent = drivers.filter((file) => !existsSync(file));
  if (absent.length > 0 && absent.length === drivers.length) return `the Vulkan driver files named by VK_DRIVER_FILES / VK_ICD_FILENAMES do not exist (${absent.join(', ')})`;
  if (drivers.length === 0) return `no Vulkan driver is installed (no ICD file in ${VULKAN_ICD_DIRS[0]}): install your GPU's Vulkan driver, or ${SETUP_HINT}`;
  return null;
}

/** Why Dawn found no adapter although Vulkan's files are there. */
function noAdapterReason(): string {
  if (process.platform !== 'linux') return 'Dawn found no WebGPU adapter';
  return `Dawn found no usable adapter among the Vulkan drivers (${vulkanDrivers()
    .map((d) => basename(d))
    .join(', ')}), and Mesa's lavapipe must be 25 or newer (22.3 is too old for Dawn): ${SETUP_HINT}`;
}

const message = (error: unknown) => (error instanceof Error ? error.message : String(error));

async function load(): Promise<WebGpuProbe> {
  // Not even loaded without Vulkan's files: Dawn would only print its own warnings and find nothing.
  const missing = missingVulkan();
  if (missing) return { adapter: null, reason: missing };
  let dawn: typeof import('webgpu');
  try {
    dawn = await import('webgpu');
  } catch (error) {
    return { adapter: null, reason: `the webgpu package (Dawn) failed to load: ${message(error).split('\n')[0]}` };
  }
  // tfjs-backend-webgpu reads these globals (GPUBufferUsage, ...); its own import registers a backend
  // only where navigator.gpu exists (replaced below by one on this adapter).
  Object.assign(globalThis, dawn.globals);
  const scope = globalThis as { navigator?: { gpu?: GPU } };
  scope.navigator ??= {};
  const gpu = dawn.create([]);
  scope.navigator.gpu = gpu;
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) return { adapter: null, reason: noAdapterReason() };
  const { WebGPUBackend } = await import('@tensorflow/tfjs-backend-webgpu');
  const info = adapter.info as GPUAdapterInfo & AdapterInfoLike;
  // The package's own factory asks Dawn for an adapter again; this one uses the adapter named here,
  // with the same device limits the package asks for.
  if (tf.findBackendFactory('webgpu')) tf.removeBackend('webgpu');
  tf.registerBackend('webgpu', async () => {
    const limits = adapter.limits;
    const device = await adapter.requestDevice({
      requiredFeatures: adapter.features.has('timestamp-query') ? ['timestamp-query'] : [],
      requiredLimits: {
        maxComputeWorkgroupStorageSize: limits.maxComputeWorkgroupStorageSize,
        maxComputeWorkgroupsPerDimension: limits.maxComputeWorkgroupsPerDimension,
        maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
        maxBufferSize: limits.maxBufferSize,
        maxComputeWorkgroupSizeX: limits.maxComputeWorkgroupSizeX,
        maxComputeInvocationsPerWorkgroup: limits.maxComputeInvocationsPerWorkgroup,
      },
    });
    return new WebGPUBackend(device, info);
  });
  // Dawn's description is the driver's (NVIDIA's reads 'NVIDIA: 580.159.04 …'); `device` names the chip.
  const description = [info.description, info.device].find((s) => s) ?? 'unnamed adapter';
  const architecture = [info.architecture, info.device].find((s) => s) ?? '';
  return { adapter: { description, vendor: info.vendor ?? '', architecture, software: isSoftwareAdapter(info) } };
}

let loaded: Promise<WebGpuProbe> | undefined;

/** The real loader: Dawn and tfjs-backend-webgpu are imported on the first call, once per process. */
export const importWebGpu: WebGpuLoader = () => {
  loaded ??= load().catch((error: unknown) => ({ adapter: null, reason: `WebGPU failed to start: ${message(error)}` }));
  return loaded;
};

/** Words for an adapter in the job's output. */
export const describeAdapter = (a: GpuAdapter) => {
  const details = [a.vendor, a.architecture].filter(Boolean).join(', ');
  return `${a.software ? 'software adapter' : 'GPU'} '${a.description}'${details ? ` (${details})` : ''}`;
};
