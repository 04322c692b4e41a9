#!/usr/bin/env node
// A strict third-party OCPP 1.6J central system for the ocpp-bridge tests, built on the
// `ocpp-rpc` library (strictMode: every inbound CALL and every CALLRESULT is checked against
// the library's bundled OCPP 1.6 JSON schemas). Driven by tests/peers/rpc_peer.py.
//
//   node ocpp_rpc_csms.js [--port N] [--boot-status Accepted|Pending|Rejected] [--interval N]
//                         [--password P] [--invalid-tags A,B] [--firmware-management] [--security]
//
// --firmware-management handles (so strict mode validates) the FirmwareManagement profile's
// DiagnosticsStatusNotification and FirmwareStatusNotification; without it they get NotImplemented.
// --security handles the security extension's four charge-point-initiated messages the same way:
// SecurityEventNotification, SignCertificate (answered Accepted), LogStatusNotification and
// SignedFirmwareStatusNotification.
//
// Endpoint: ws://127.0.0.1:<port>/ocpp/<identity>, subprotocol "ocpp1.6" required.
// stdout: one JSON object per line per event ("listening" first; "answer" for each reply to a CALL).
// stdin: one JSON command per line, {"id", "identity", "method", "params", "timeoutMs"?}, answered
// by a "result" or "error" event carrying the same id. Exits on SIGTERM, SIGINT and when stdin closes.
'use strict';
const readline = require('node:readline');
const { parseArgs } = require('node:util');
const { RPCServer } = require('ocpp-rpc');

const { values: opts } = parseArgs({
    options: {
        port: { type: 'string', default: '0' },
        'boot-status': { type: 'string', default: 'Accepted' },
        interval: { type: 'string', default: '300' },
        password: { type: 'string' },
        'invalid-tags': { type: 'string', default: '' },
        'firmware-management': { type: 'boolean', default: false },
        security: { type: 'boolean', default: false },
    },
});
const port = Number(opts.port);
const interval = Number(opts.interval);
const bootStatus = opts['boot-status'];
const invalidTags = new Set(opts['invalid-tags'].split(',').filter(Boolean));
if (!Number.isInteger(port) || !Number.isInteger(interval) || !['Accepted', 'Pending', 'Rejected'].includes(bootStatus)) {
    process.stderr.write('usage: ocpp_rpc_csms.js [--port N] [--boot-status Accepted|Pending|Rejected] '
        + '[--interval N] [--password P] [--invalid-tags A,B] [--firmware-management] [--security]\n');
    process.exit(2);
}

// Writes to a pipe are synchronous on Linux, so every line is out before the next event.
const emit = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
const now = () => new Date().toISOString();
const idTagInfo = (idTag) => ({ status: invalidTags.has(idTag) ? 'Invalid' : 'Accepted' });

const server = new RPCServer({ protocols: ['ocpp1.6'], strictMode: ['ocpp1.6'] });
const connected = new Map(); // identity -> newest RPCServerClient
let nextTransactionId = 1;

// Checked before the WebSocket upgrade: endpoint, subprotocol, then HTTP Basic credentials.
// ocpp-rpc only fills handshake.password when the Basic username equals the identity.
server.auth((accept, reject, handshake) => {
    const refuse = (status, reason) => {
        emit({ event: 'auth_rejected', identity: handshake.identity, status, reason });
        reject(status, reason);
    };
    if (handshake.endpoint !== '/ocpp' || !handshake.identity) return refuse(404, 'Not found');
    if (!handshake.protocols.has('ocpp1.6')) return refuse(400, 'Subprotocol ocpp1.6 required');
    if (opts.password !== undefined
        && !(handshake.password && handshake.password.equals(Buffer.from(opts.password, 'utf8')))) {
        return refuse(401, 'Unauthorized');
    }
    accept();
});

server.on('client', (client) => {
    const identity = client.identity;
    connected.set(identity, client);
    emit({ event: 'connect', identity, protocol: client.protocol });

    // 'call' fires for every inbound CALL before validation and before the answer, so calls that
    // strict mode refuses and unknown actions are logged too (with their strictValidationFailure).
    client.on('call', ({ outbound, payload }) => {
        if (outbound) return;
        const [, messageId, method, params] = payload;
        emit({ event: 'call', identity, method, params, messageId, time: now() });
    });
    // 'response' fires for every frame answering an inbound CALL, as sent: a CALLRESULT proves the
    // CALL passed strict validation and had a handler.
    client.on('response', ({ outbound, payload }) => {
        if (!outbound) return;
        const [type, messageId, ...rest] = payload;
        emit(type === 3
            ? { event: 'answer', identity, messageId, result: rest[0] }
            : { event: 'answer', identity, messageId, code: rest[0], error: rest[1] });
    });
    client.on('strictValidationFailure', (e) => emit({
        event: 'strictValidationFailure', identity, method: e.method, messageId: e.messageId,
        outbound: e.outbound, isCall: e.isCall, code: e.error.rpcErrorCode, error: e.error.message,
    }));
    client.on('badMessage', (e) => emit({
        event: 'badMessage', identity, message: e.buffer.toString('utf8'),
        error: e.error.message, response: e.response,
    }));
    client.on('close', ({ code, reason }) => {
        if (connected.get(identity) === client) connected.delete(identity);
        emit({ event: 'close', identity, code, reason: String(reason ?? '') });
    });

    // No wildcard handler on purpose: with one, ocpp-rpc validates unknown actions against a
    // missing schema and answers ProtocolError; without, it answers NotImplemented.
    client.handle('BootNotification', () => ({ status: bootStatus, currentTime: now(), interval }));
    client.handle('Heartbeat', () => ({ currentTime: now() }));
    client.handle('StatusNotification', () => ({}));
    client.handle('MeterValues', () => ({}));
    client.handle('Authorize', ({ params }) => ({ idTagInfo: idTagInfo(params.idTag) }));
    client.handle('StartTransaction', ({ params }) => ({
        idTagInfo: idTagInfo(params.idTag), transactionId: nextTransactionId++,
    }));
    client.handle('StopTransaction', ({ params }) => (
        params.idTag === undefined ? {} : { idTagInfo: idTagInfo(params.idTag) }));
    client.handle('DataTransfer', () => ({ status: 'UnknownVendorId' }));
    if (opts['firmware-management']) {
        client.handle('DiagnosticsStatusNotification', () => ({}));
        client.handle('FirmwareStatusNotification', () => ({}));
    }
    if (opts.security) {
        client.handle('SecurityEventNotification', () => ({}));
        client.handle('SignCertificate', () => ({ status: 'Accepted' }));
        client.handle('LogStatusNotification', () => ({}));
        client.handle('SignedFirmwareStatusNotification', () => ({}));
    }
});

// Central-system-initiated calls, one JSON command per stdin line.
async function runCommand(line) {
    let cmd;
    try {
        cmd = JSON.parse(line);
    } catch (err) {
        return emit({ event: 'error', id: null, code: 'BadCommand', message: err.message });
    }
    const { id = null, identity, method, params = {}, timeoutMs } = cmd;
    const client = connected.get(identity);
    if (!client) {
        return emit({ event: 'error', id, code: 'NotConnected', message: `${identity} is not connected` });
    }
    try {
        const result = await client.call(method, params, timeoutMs ? { callTimeoutMs: timeoutMs } : {});
        emit({ event: 'result', id, result });
    } catch (err) {
        // RPC errors carry rpcErrorCode; a timeout is a TimeoutError, a dropped socket an AbortError.
        const code = err.rpcErrorCode ?? (err.name !== 'Error' ? err.name : err.constructor.name);
        emit({ event: 'error', id, code, message: err.message });
    }
}

let stopping = false;
async function shutdown() {
    if (stopping) return;
    stopping = true;
    // Close every connection with 1001 "going away", but never wait longer than 2 s for peers.
    const timer = setTimeout(() => process.exit(0), 2000);
    try {
        await server.close({ code: 1001, reason: 'Central system shutting down' });
    } finally {
        clearTimeout(timer);
        process.exit(0);
    }
}

async function main() {
    const httpServer = await server.listen(port, '127.0.0.1');
    emit({ event: 'listening', port: httpServer.address().port });
    const rl = readline.createInterface({ input: process.stdin });
    rl.on('line', (line) => { if (line.trim()) runCommand(line); });
    rl.on('close', shutdown);
}

process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
main().catch((err) => {
    process.stderr.write(`ocpp_rpc_csms: ${err.stack || err}\n`);
    process.exit(1);
});
