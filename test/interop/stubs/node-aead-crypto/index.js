// node-dtls-client loads node-aead-crypto only on Node < 10; lwbs needs Node >= 20.19.
throw new Error('node-aead-crypto stub: not used on Node >= 10');
