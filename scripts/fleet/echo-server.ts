/**
 * The baseline's far end: a raw UDP echo on 127.0.0.1 in its own process (as the server runs in
 * its own), answering every datagram with itself. Prints `{"port":N}` on stdout when bound; stops
 * on SIGTERM or when stdin closes.
 */
import { createSocket } from 'node:dgram';

const socket = createSocket('udp4');
socket.on('message', (msg, rinfo) => socket.send(msg, rinfo.port, rinfo.address));
socket.bind(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: socket.address().port })}\n`);
});
const stop = (): void => {
  socket.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.stdin.on('end', stop);
process.stdin.resume();
