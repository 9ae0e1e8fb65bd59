// Preload for the MCP reference server in tests (`node -r ./loopback.cjs ...`):
// the server calls listen(PORT) without a host, which binds every interface;
// tests must stay on 127.0.0.1, so a numeric port without a host gets one.
'use strict';
const net = require('net');
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if ((typeof args[0] === 'number' || (typeof args[0] === 'string' && /^\d+$/.test(args[0]))) &&
      typeof args[1] !== 'string') {
    args.splice(1, 0, '127.0.0.1');
  }
  return listen.apply(this, args);
};
