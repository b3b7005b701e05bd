/** The LwM2M device simulator: the client side of bootstrap over real UDP. */
export * from './device-model.js';
export * from './report.js';
export * from './simulator.js';
