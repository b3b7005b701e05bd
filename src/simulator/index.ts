/** The LwM2M device simulator: the client side of bootstrap and registration over real UDP. */
export * from './device-model.js';
export * from './dm.js';
export * from './observe.js';
export * from './registration.js';
export * from './report.js';
export * from './simulator.js';
